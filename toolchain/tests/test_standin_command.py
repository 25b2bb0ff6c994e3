"""command:local:Command stand-in, over gRPC."""

import grpc
import pytest
from pulumi.runtime.proto import provider_pb2

from conftest import urn
from standin.base import UNKNOWN

PLUGIN = "command"
T = "command:local:Command"


def test_plugin_info(plugin):
    from google.protobuf import empty_pb2

    assert plugin.stub.GetPluginInfo(empty_pb2.Empty()).version == "1.2.1"


def test_create_update_delete(plugin, tmp_path):
    u = urn(T, "c")
    marker = tmp_path / "deleted"
    inputs, failures = plugin.check(u, {
        "create": "echo created $FOO; echo oops >&2",
        "update": 'echo "updated after [$PULUMI_COMMAND_STDOUT]"',
        "delete": f'echo "$PULUMI_COMMAND_STDOUT" > {marker}',
        "environment": {"FOO": "bar"},
    })
    assert not failures
    rid, out, _ = plugin.create(u, inputs)
    assert rid
    assert out["stdout"] == "created bar"       # one trailing newline removed
    assert out["stderr"] == "oops"

    news = dict(inputs, environment={"FOO": "baz"})
    d = plugin.diff(u, rid, out, news)
    assert d.changes == provider_pb2.DiffResponse.DIFF_SOME
    assert list(d.diffs) == ["environment"] and not d.replaces
    out2, _ = plugin.update(u, rid, out, news)
    assert out2["stdout"] == "updated after [created bar]"

    plugin.delete(u, rid, out2)
    assert marker.read_text().strip() == "updated after [created bar]"


def test_no_change_is_no_diff(plugin):
    u = urn(T, "same")
    inputs, _ = plugin.check(u, {"create": "true", "triggers": ["a", 1]})
    rid, out, _ = plugin.create(u, inputs)
    d = plugin.diff(u, rid, out, inputs)
    assert d.changes == provider_pb2.DiffResponse.DIFF_NONE


def test_triggers_replace(plugin):
    u = urn(T, "t")
    inputs, _ = plugin.check(u, {"create": "true", "triggers": ["a"]})
    rid, out, _ = plugin.create(u, inputs)
    d = plugin.diff(u, rid, out, dict(inputs, triggers=["b"]))
    assert list(d.replaces) == ["triggers"]


def test_update_without_update_script_reruns_create(plugin):
    u = urn(T, "u")
    inputs, _ = plugin.check(u, {"create": "echo $N", "environment": {"N": "1"}})
    rid, out, _ = plugin.create(u, inputs)
    out2, _ = plugin.update(u, rid, out, dict(inputs, environment={"N": "2"}))
    assert out2["stdout"] == "2"


def test_interpreter_dir_stdin(plugin, tmp_path):
    u = urn(T, "i")
    inputs, _ = plugin.check(u, {
        "create": "import os,sys; print(os.getcwd()); print(sys.stdin.read())",
        "interpreter": ["python3", "-c"], "dir": str(tmp_path), "stdin": "hello",
    })
    _, out, _ = plugin.create(u, inputs)
    assert out["stdout"] == f"{tmp_path}\nhello"


def test_failure_reports_output(plugin):
    u = urn(T, "f")
    inputs, _ = plugin.check(u, {"create": "echo visible; echo bad >&2; exit 3"})
    with pytest.raises(grpc.RpcError) as e:
        plugin.create(u, inputs)
    assert "exit status 3" in e.value.details() and "bad" in e.value.details()


def test_preview_outputs_unknown(plugin):
    u = urn(T, "p")
    inputs, _ = plugin.check(u, {"create": "touch /nonexistent/should-not-run"})
    rid, out, _ = plugin.create(u, inputs, preview=True)
    assert out["stdout"] is UNKNOWN and out["stderr"] is UNKNOWN


def test_secret_environment_stays_secret(plugin):
    u = urn(T, "s")
    inputs, _ = plugin.check(u, {"create": "echo ok", "environment": {"K": "hush"}}, secrets={"environment"})
    _, out, sec = plugin.create(u, inputs, secrets={"environment"})
    assert "environment" in sec


def test_unknown_property_fails_check(plugin):
    _, failures = plugin.check(urn(T, "x"), {"create": "true", "bogus": 1})
    assert failures and failures[0].property == "bogus"
