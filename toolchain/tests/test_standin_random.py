"""random:index/randomPassword:RandomPassword stand-in, over gRPC."""

import string

from pulumi.runtime.proto import provider_pb2

from conftest import urn
from standin.base import UNKNOWN

PLUGIN = "random"
T = "random:index/randomPassword:RandomPassword"


def test_defaults_and_secret_result(plugin):
    u = urn(T, "p")
    inputs, failures = plugin.check(u, {"length": 32, "special": False})
    assert not failures
    assert inputs["upper"] is True and inputs["numeric"] is True and inputs["number"] is True
    rid, out, sec = plugin.create(u, inputs)
    assert rid == "none"
    assert len(out["result"]) == 32
    assert set(out["result"]) <= set(string.ascii_letters + string.digits)
    assert {"result", "bcryptHash"} <= sec
    assert out["bcryptHash"].startswith("$2")


def test_min_counts(plugin):
    u = urn(T, "m")
    inputs, _ = plugin.check(u, {"length": 8, "minUpper": 2, "minNumeric": 2, "minSpecial": 2,
                                 "overrideSpecial": "#"})
    _, out, _ = plugin.create(u, inputs)
    r = out["result"]
    assert sum(c.isupper() for c in r) >= 2 and sum(c.isdigit() for c in r) >= 2 and r.count("#") >= 2


def test_every_input_replaces_and_result_is_stable(plugin):
    u = urn(T, "r")
    inputs, _ = plugin.check(u, {"length": 16})
    rid, out, _ = plugin.create(u, inputs)
    same = plugin.diff(u, rid, out, inputs)
    assert same.changes == provider_pb2.DiffResponse.DIFF_NONE
    for change in ({"length": 17}, {"special": False}, {"keepers": {"k": "v"}}, {"minLower": 1}):
        news, _ = plugin.check(u, {"length": 16, **change}, olds=inputs)
        d = plugin.diff(u, rid, out, news)
        assert d.changes == provider_pb2.DiffResponse.DIFF_SOME
        assert set(d.replaces) == set(change), change


def test_preview_result_unknown(plugin):
    u = urn(T, "pv")
    inputs, _ = plugin.check(u, {"length": 10})
    _, out, _ = plugin.create(u, inputs, preview=True)
    assert out["result"] is UNKNOWN


def test_impossible_lengths_fail_check(plugin):
    _, failures = plugin.check(urn(T, "bad"), {"length": 2, "minUpper": 3})
    assert failures and failures[0].property == "length"
    _, failures = plugin.check(urn(T, "bad2"), {})
    assert failures and failures[0].property == "length"
