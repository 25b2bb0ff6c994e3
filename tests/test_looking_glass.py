"""The looking glass (images/netclient/looking_glass): what its core lets run and what it
refuses, table-driven; its config from the plan; and the real server on loopback against a
fake birdc that records every run, to show a refused query never reaches birdc."""

from __future__ import annotations

import json
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "images" / "netclient" / "looking_glass"))

from bgp4mesh_lg import core  # noqa: E402
from bgp4mesh_lg.schema import Config  # noqa: E402
from bgp4mesh_lg.server import Server, main  # noqa: E402

from bgp4mesh.looking_glass import CONFIG_PATH, LG_DIR, LG_FILE, looking_glass_config  # noqa: E402
from bgp4mesh.plan import build_plan  # noqa: E402
from bgp4mesh.stack import load_file  # noqa: E402

# ---- the core: commands ---------------------------------------------------------------------
ALLOWED = [
    ("show protocols", "show protocols"),
    ("  show   protocols ", "show protocols"),
    ("show protocols all peer_isp", "show protocols all peer_isp"),
    ("show route for 44.30.127.10", "show route for 44.30.127.10"),
    ("show route for 44.30.127.0/24", "show route for 44.30.127.0/24"),
    ("show route for 2001:db8::1", "show route for 2001:db8::1"),
    ("show route for 2001:DB8:0::/32", "show route for 2001:db8::/32"),
    ("show route where net ~ 44.30.127.0/24", "show route where net ~ 44.30.127.0/24"),
    ("show route where net ~ 10.0.0.0/8", "show route where net ~ 10.0.0.0/8"),
    ("show route where net ~ 2001:db8::/32", "show route where net ~ 2001:db8::/32"),
    ("show route export peer_isp", "show route export peer_isp"),
]


@pytest.mark.parametrize("text, words", ALLOWED)
def test_an_allowed_command_runs_as_its_canonical_words(text, words):
    assert core.parse_command(text) == core.Query(tuple(words.split()))


REFUSED = [
    ("configure", 403, "'configure' is not allowed"),
    ("configure soft", 403, "'configure soft' is not allowed"),
    ("down", 403, "'down' is not allowed"),
    ("restart peer_isp", 403, "not allowed"),
    ("disable peer_isp", 403, "not allowed"),
    ("show status", 403, "'show status' is not allowed"),
    ("show route", 403, "show route needs one filter"),
    ("show route all", 403, "show route needs one filter"),
    ("show route table master4", 403, "show route needs one filter"),
    ("show route protocol peer_isp", 403, "show route needs one filter"),
    ("show route where net ~ 0.0.0.0/0", 403, "nearly the whole table"),
    ("show route where net ~ 44.0.0.0/7", 403, "nearly the whole table"),
    ("show route where net ~ ::/0", 403, "nearly the whole table"),
    ("sh ro for 44.30.127.10", 403, "not allowed"),
    ("SHOW ROUTE", 403, "not allowed"),
    ("", 403, "an empty query"),
    ("show route for 44.30.127.10 all", 400, "with nothing more"),
    ("show route for", 400, "with nothing more"),
    ("show route for 44.30.127.10 44.30.127.11", 400, "with nothing more"),
    ("show route for 44.30.127.1/24", 400, "has host bits set"),
    ("show route for 44.30.127.300", 400, "not an IP address"),
    ("show route for peer_isp", 400, "not an IP address"),
    ("show route where net ~ 44.30.127.10", 400, "not a prefix"),
    ("show route where net ~ 44.30.127.0/24 && true", 400, "character '&'"),
    ("show route where net ~ 44.30.127.0/24 || net ~ 0.0.0.0/0", 400, "character '|'"),
    ("show route where net ~ 44.30.127.0/24 net", 400, "with nothing more"),
    ("show route where bgp_path ~ 44.30.127.0/24", 400, "with nothing more"),
    ("show route export", 400, "with nothing more"),
    ("show route export 1peer", 400, "not a BIRD protocol name"),
    ("show route export peer_isp filtered", 400, "with nothing more"),
    ("show protocols peer_isp", 400, "show protocols takes"),
    ("show protocols all", 400, "show protocols takes"),
    ("show protocols all peer_isp extra", 400, "show protocols takes"),
    ("show protocols all \"peer\"", 400, "character '\"'"),
    ("show protocols; configure", 400, "character ';'"),
    ("show protocols && down", 400, "character '&'"),
    ("show protocols | sh", 400, "character '|'"),
    ("show protocols `down`", 400, "character '`'"),
    ("show protocols $(down)", 400, "character '$'"),
    ("show protocols > /tmp/x", 400, "character '>'"),
    ("show protocols\ndown", 400, "character '\\n'"),
    ("show protocols\tall x", 400, "character '\\t'"),
    ("show route for 44.30.127.10 " + "x" * 200, 400, "longer than"),
]


@pytest.mark.parametrize("text, status, why", REFUSED)
def test_anything_else_is_refused_with_a_reason(text, status, why):
    decision = core.parse_command(text)
    assert isinstance(decision, core.Reply), decision
    assert decision.status == status and why in decision.text, decision


def test_a_refusal_of_another_command_lists_what_is_allowed():
    assert "show route for <address or prefix>" in core.parse_command("configure").text


# ---- the core: URLs -------------------------------------------------------------------------
URLS = [
    ("/protocols", "show protocols"),
    ("/protocols/peer_isp", "show protocols all peer_isp"),
    ("/route?for=44.30.127.10", "show route for 44.30.127.10"),
    ("/route?for=44.30.127.0%2F24", "show route for 44.30.127.0/24"),
    ("/route?where=44.30.127.0/24", "show route where net ~ 44.30.127.0/24"),
    ("/route?export=peer_isp", "show route export peer_isp"),
    ("/?q=show+route+for+44.30.127.10", "show route for 44.30.127.10"),
    ("/?q=show%20protocols%20all%20peer_isp", "show protocols all peer_isp"),
    ("http://lg.example/route?for=44.30.127.10", "show route for 44.30.127.10"),
]


@pytest.mark.parametrize("url, words", URLS)
def test_each_url_means_one_allowed_command(url, words):
    assert core.parse_url(url) == core.Query(tuple(words.split()))


REFUSED_URLS = [
    ("/?q=configure", 403, "'configure' is not allowed"),
    ("/?q=down", 403, "'down' is not allowed"),
    ("/?q=show+route", 403, "show route needs one filter"),
    ("/route", 403, "show route needs one filter"),
    ("/route?for=44.30.127.10+all", 400, "with nothing more"),
    ("/route?for=44.30.127.10%3Bdown", 400, "character ';'"),
    ("/route?for=44.30.127.10%0Adown", 400, "character '\\n'"),
    ("/route?where=net+~+0.0.0.0/0", 400, "with nothing more"),
    ("/route?for=44.30.127.10&export=peer_isp", 400, "exactly one of"),
    ("/route?for=44.30.127.10&for=44.30.127.11", 400, "more than once"),
    ("/route?table=master4", 400, "exactly one of"),
    ("/route?for", 400, "malformed query string"),
    ("/?q=show+protocols&x=1", 400, "q=<command> alone"),
    ("/?q=show+route+for+%FF", 400, "malformed query string"),
    ("/protocols?all=1", 400, "takes no parameters"),
    ("/protocols/peer_isp%20configure", 400, "show protocols takes"),
    ("/protocols/../route", 400, "not a BIRD protocol name"),
    ("/configure", 404, "no such page"),
    ("/export?peer=peer_isp", 404, "no such page"),
]


@pytest.mark.parametrize("url, status, why", REFUSED_URLS)
def test_a_refused_url_says_why(url, status, why):
    decision = core.parse_url(url)
    assert isinstance(decision, core.Reply), decision
    assert decision.status == status and why in decision.text, decision


def test_the_root_page_documents_the_api():
    page = core.parse_url("/")
    assert page.status == 200 and "/route?for=<ip|prefix>" in page.text and "show route export <protocol>" in page.text


SOURCES = [
    ("198.51.100.1", True), ("198.51.100.255", True), ("198.51.101.1", False), ("203.0.113.1", False),
    ("::ffff:198.51.100.7", True), ("2001:db8::1", True), ("2001:db9::1", False), ("fe80::1%eth0", False),
    ("not an address", False),
]


@pytest.mark.parametrize("source, allowed", SOURCES)
def test_only_sources_inside_the_allowed_prefixes_may_query(source, allowed):
    nets = Config(port=1, allow=("198.51.100.0/24", "2001:db8::/32")).networks
    assert core.source_allowed(source, nets) is allowed


def test_birdc_runs_restricted_with_the_words_as_separate_arguments():
    argv = core.birdc_argv("/usr/sbin/birdc", "/run/bird/bird.ctl", core.parse_command("show route for 44.30.127.10"))
    assert argv == ["/usr/sbin/birdc", "-r", "-s", "/run/bird/bird.ctl", "show", "route", "for", "44.30.127.10"]


# ---- the config -----------------------------------------------------------------------------
def test_the_config_comes_from_the_plan_and_the_image_reads_it_back():
    text = looking_glass_config(build_plan(load_file("dev")))
    assert json.loads(text)["allow"] == ["198.51.100.0/24"] and json.loads(text)["port"] == 8095
    config = Config.from_json(text)
    assert config.socket == "/run/bird/bird.ctl" and config.listen == "0.0.0.0"
    assert CONFIG_PATH == "/etc/bgp4mesh/looking-glass.json" and (LG_DIR, LG_FILE) == ("/etc/bgp4mesh", "looking-glass.json")


@pytest.mark.parametrize("stack", ["prod", "staging", "staging-ha"])
def test_it_is_off_where_the_stack_does_not_ask_for_it(stack):
    plan = build_plan(load_file(stack))
    assert looking_glass_config(plan) is None


@pytest.mark.parametrize("raw, why", [
    ({"port": 8095, "allow": ["198.51.100.0/24"], "shell": True}, "unknown keys ['shell']"),
    ({"port": "8095", "allow": ["198.51.100.0/24"]}, "port must be int"),
    ({"port": 8095, "allow": "198.51.100.0/24"}, "allow must be a list of strings"),
    ({"port": 8095, "allow": []}, "allow lists no source prefix"),
    ({"port": 8095, "allow": ["198.51.100.1/24"]}, "has host bits set"),
    ({"port": 70000, "allow": ["198.51.100.0/24"]}, "is not a TCP port"),
    ({"allow": ["198.51.100.0/24"]}, "missing keys ['port']"),
])
def test_a_bad_config_is_refused_by_key(raw, why):
    with pytest.raises(ValueError, match=why.replace("[", r"\[").replace("]", r"\]")):
        Config.from_json(json.dumps(raw))


def test_the_program_refuses_a_bad_config_with_its_reason_and_serves_nothing(tmp_path, capsys):
    bad = tmp_path / "looking-glass.json"
    bad.write_text(json.dumps({"port": 0, "allow": ["198.51.100.0/24"], "birdc": ["sh", "-c"]}))
    assert main([str(bad)]) == 1
    assert "looking glass config: birdc must be str" in capsys.readouterr().err


# ---- the real server against a fake birdc ---------------------------------------------------
FAKE_BIRDC = """\
#!{python}
import json, sys, time
with open({log!r}, "a") as f:
    f.write(json.dumps(sys.argv[1:]) + "\\n")
words = sys.argv[4:]
if words == ["show", "route", "for", "10.9.9.9"]:
    time.sleep(30)
if words == ["show", "route", "where", "net", "~", "10.0.0.0/8"]:
    sys.stdout.write("x" * 100000)
if words == ["show", "route", "export", "nosuch"]:
    print("No valid tables")
    sys.exit(1)
print("BIRD 2.0.12 ready.")
print("fake answer to " + " ".join(words))
"""


class Running:
    """The looking glass on 127.0.0.1 (a free port) with a fake birdc that logs its argv."""

    def __init__(self, tmp: Path, allow: tuple[str, ...]):
        self.log = tmp / "birdc.log"
        self.log.write_text("")
        fake = tmp / "birdc"
        fake.write_text(FAKE_BIRDC.format(python=sys.executable, log=str(self.log)))
        fake.chmod(0o755)
        config = Config(port=0, allow=allow, listen="127.0.0.1", socket="/run/test.ctl", birdc=str(fake),
                        timeout_ms=1000, max_output=4096)
        self.server = Server(config)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path: str, method: str = "GET") -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def runs(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def served(tmp_path):
    running = Running(tmp_path, ("127.0.0.0/8",))
    yield running
    running.close()


def test_the_server_runs_an_allowed_query_and_nothing_else(served):
    status, body = served.get("/route?for=44.30.127.10")
    assert (status, body) == (200, "BIRD 2.0.12 ready.\nfake answer to show route for 44.30.127.10\n")
    assert served.runs() == [["-r", "-s", "/run/test.ctl", "show", "route", "for", "44.30.127.10"]]
    refused = [url for url, _, _ in REFUSED_URLS] + ["/?q=" + text.replace(" ", "+") for text, _, _ in REFUSED if "\n" not in text]
    for url in refused:
        status, body = served.get(url.replace("\t", "%09"))
        assert status in (400, 403, 404), (url, status, body)
    for method in ("POST", "PUT", "DELETE"):
        assert served.get("/?q=configure", method)[0] == 405
    assert len(served.runs()) == 1, served.runs()


def test_the_server_answers_every_allowed_url(served):
    for url, words in URLS[:-1]:
        status, body = served.get(url)
        assert (status, body.splitlines()[-1]) == (200, f"fake answer to {words}"), url
    assert [run[3:] for run in served.runs()] == [words.split() for _, words in URLS[:-1]]


def test_a_slow_birdc_is_ended_a_long_one_cut_and_a_failing_one_reported(served):
    status, body = served.get("/route?for=10.9.9.9")
    assert status == 504 and "no answer within 1000 ms" in body
    status, body = served.get("/route?where=10.0.0.0/8")
    assert status == 200 and body == "x" * 4096 + "\n[output cut at 4096 bytes]\n"
    status, body = served.get("/route?export=nosuch")
    assert status == 502 and "birdc exited with status 1" in body and "No valid tables" in body


def test_a_client_outside_the_allowed_prefixes_is_refused_before_anything_runs(tmp_path):
    running = Running(tmp_path, ("198.51.100.0/24",))
    try:
        status, body = running.get("/route?for=44.30.127.10")
        assert status == 403 and "127.0.0.1 may not query" in body
        assert running.get("/")[0] == 403
        assert running.runs() == []
    finally:
        running.close()

