"""End-to-end tests of the web console in a real headless Chromium."""
import http.client
import socket
import subprocess
import threading
import time

from conftest import ADMIN_SECRET, confirm_change, screenshot, sign_in, wait_until


def test_sign_in_shows_the_overview_and_sign_out_forgets_the_token(page, fulcrum):
    page.goto(fulcrum.url)
    page.fill("#token", "fulcrum_wrong")
    page.press("#token", "Enter")  # the keyboard is enough
    page.wait_for_selector("#sign-in-error:has-text('not accepted')")
    page.fill("#token", ADMIN_SECRET)
    page.press("#token", "Enter")
    page.wait_for_selector("section[data-service=web] tr[data-node=a]")
    assert "version 1" in page.inner_text("#who")
    assert page.evaluate("sessionStorage.getItem('fulcrum.token')") == ADMIN_SECRET
    screenshot(page, "overview")
    page.click("#sign-out")
    page.wait_for_selector("#sign-in:not([hidden])")
    assert page.evaluate("sessionStorage.getItem('fulcrum.token')") is None
    page.reload()
    page.wait_for_selector("#sign-in:not([hidden])")


def test_every_file_the_console_loads_exists_the_icon_included(page, fulcrum):
    failed = []
    page.on("response", lambda response: failed.append(f"{response.status} {response.url}")
            if response.status >= 400 and "/api/" not in response.url else None)
    page.goto(fulcrum.url)
    page.wait_for_selector("#sign-in:not([hidden])")
    page.wait_for_load_state("networkidle")
    icon = page.evaluate("document.querySelector('link[rel=icon]').href")
    assert icon.endswith("/console/favicon.svg")
    assert page.request.get(icon).headers["content-type"] == "image/svg+xml"
    assert page.request.get(fulcrum.url.split("/console")[0] + "/favicon.ico").status == 200
    assert failed == [], failed


def test_live_numbers_move_while_traffic_flows(page, fulcrum):
    sign_in(page, fulcrum)
    page.wait_for_selector("section[data-service=web] .service-rps")
    assert float(page.inner_text("section[data-service=web] .service-rps")) == 0
    stop = threading.Event()

    def load():
        while not stop.is_set():
            fulcrum.get("/api/load")
            time.sleep(0.01)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        wait_until(lambda: float(page.inner_text("section[data-service=web] .service-rps")) > 5, what="service req/s above 5")
        first = page.inner_text("section[data-service=web] tr[data-node=a] .node-rps")
        wait_until(lambda: page.inner_text("section[data-service=web] tr[data-node=a] .node-rps") != first, what="node req/s to change")
        path = page.get_attribute("section[data-service=web] .chart path.s0", "d")
        assert path.count("L") > 2, path
        screenshot(page, "overview-live")
    finally:
        stop.set()
        worker.join()


def test_draining_a_node_stops_traffic_to_it(page, fulcrum):
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/services")
    page.click("section[data-service=web] tr[data-node=b] button[data-action=drain]")
    confirm_change(page, "drain b for maintenance")
    page.wait_for_selector("section[data-service=web] tr[data-node=b] .badge.draining")
    screenshot(page, "services")
    fulcrum.a.hits = fulcrum.b.hits = 0
    for _ in range(40):
        fulcrum.get("/api/x")
    assert (fulcrum.a.hits, fulcrum.b.hits) == (40, 0)
    page.click("section[data-service=web] tr[data-node=b] button[data-action=enable]")
    confirm_change(page, "b is back")
    page.wait_for_selector("section[data-service=web] tr[data-node=b] .badge.up")
    page.click("section[data-service=web] tr[data-node=a] button:has-text('Probe history')")
    page.wait_for_selector("section[data-service=web] tr[data-node=a] .probes li")


def test_an_invalid_route_shows_the_error_beside_the_field_and_the_fixed_route_serves(page, fulcrum):
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/routes")
    page.click("#add-route")
    page.fill("#route-form #f-name", "shop")
    page.select_option("#route-kind", "regex")
    page.fill("#route-form input[data-path='match.path_regex']", "^/shop/([")
    page.fill("#route-form #f-node", "b")
    error = page.wait_for_selector("#route-form [data-error='match.path_regex']:has-text('invalid regular expression')")
    assert page.get_attribute("#route-form input[data-path='match.path_regex']", "aria-invalid") == "true"
    screenshot(page, "routes-invalid")
    page.click("#save-route")  # refused while invalid: nothing is sent
    assert page.locator("#dialog[open]").count() == 0
    page.fill("#route-form input[data-path='match.path_regex']", "^/shop/")
    wait_until(lambda: error.inner_text() == "", what="the error to go")
    assert error.inner_text() == ""
    page.click("#save-route")
    confirm_change(page, "shop goes to b")
    page.wait_for_selector("#routes-table tr[data-route=shop]")
    assert [fulcrum.get("/shop/item") for _ in range(6)] == ["b"] * 6
    page.fill("#explain-path", "/shop/item")
    page.click("#explain-form button[type=submit]")
    page.wait_for_selector("#explain-result:has-text('route shop')")
    screenshot(page, "routes")


def test_rolling_back_brings_the_old_behaviour_back(page, fulcrum):
    status, _ = fulcrum.api("POST", "/routes?message=pin", {"name": "shop", "match": {"path_prefix": "/shop/"}, "service": "web", "node": "b"}, if_match="*")
    assert status == 201
    assert {fulcrum.get("/shop/x") for _ in range(6)} == {"b"}
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/history")
    page.wait_for_selector("#versions tr[data-version='2'] .badge.up")
    page.wait_for_selector("#diff .diff .add")
    screenshot(page, "history")
    page.click("#versions button[data-rollback='1']")
    confirm_change(page, "back to the imported configuration")
    page.wait_for_selector("#versions tr[data-version='3'] .badge.up")
    assert {fulcrum.get("/shop/x") for _ in range(6)} == {"a", "b"}
    status, version = fulcrum.api("GET", "/config")
    assert version["number"] == 3 and version["source"] == "rollback" and "routes" in version["config"]
    assert [r["name"] for r in version["config"]["routes"]] == ["api"]


def test_a_viewer_sees_everything_and_can_change_nothing(page, fulcrum):
    sign_in(page, fulcrum, fulcrum.viewer_secret)
    assert "(viewer)" in page.inner_text("#who")
    page.goto(fulcrum.url + "#/services")
    drain = page.wait_for_selector("section[data-service=web] tr[data-node=b] button[data-action=drain]")
    assert drain.is_disabled()
    page.goto(fulcrum.url + "#/routes")
    assert page.wait_for_selector("#add-route").is_disabled()
    page.goto(fulcrum.url + "#/protection")
    page.wait_for_selector("section[data-service=web] form[data-policy=health_check] input[data-path=interval]")
    assert page.is_disabled("section[data-service=web] form[data-policy=health_check] input[data-path=interval]")
    assert page.is_disabled("section[data-scope=gateway] form[data-policy=access_rules] button[data-add]")
    screenshot(page, "protection-viewer")
    status = page.evaluate("""async () => (await fetch('/api/v1/services/web/nodes/b/drain', {method: 'POST',
        headers: {'Authorization': 'Bearer ' + sessionStorage.getItem('fulcrum.token'), 'If-Match': '*'}})).status""")
    assert status == 403
    page.goto(fulcrum.url + "#/audit")
    page.fill("#audit-actor", "watcher")
    page.click("#audit-filter button[type=submit]")
    page.wait_for_selector("#audit tr td:has-text('403 forbidden')")
    screenshot(page, "audit")


def test_a_conflict_shows_what_changed_and_the_change_can_be_retried(page, fulcrum):
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/services")
    page.wait_for_selector("section[data-service=web] tr[data-node=a]")
    # someone else changes the configuration behind the console's back
    assert fulcrum.api("PATCH", "/services/web/nodes/b?message=other", {"weight": 3}, if_match="*")[0] == 200
    page.fill("section[data-service=web] tr[data-node=a] input[type=number]", "4")
    page.click("section[data-service=web] tr[data-node=a] button:has-text('Set weight')")
    confirm_change(page, "a gets more")
    page.wait_for_selector("#dialog[open]:has-text('Someone else changed the configuration')")
    assert "services.web.nodes[1].weight" in page.inner_text("#dialog")
    screenshot(page, "conflict")
    page.click("#retry-change")
    wait_until(lambda: fulcrum.api("GET", "/config")[1]["number"] == 3, what="version 3")
    version = fulcrum.api("GET", "/config")[1]
    assert [n.get("weight", 1) for n in version["config"]["services"]["web"]["nodes"]] == [4, 3]
    assert version["message"] == "a gets more"
    page.wait_for_selector("#who:has-text('version 3')")


def test_protection_edits_are_validated_and_show_live_state(page, fulcrum):
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/protection")
    editor = "section[data-service=web] form[data-policy=circuit_breaker]"
    # a form made from the policy's schema: the default shows, and the API's message lands beside the field
    assert page.get_attribute(f"{editor} input[data-path=cool_down]", "placeholder") == "default: 30s"
    page.fill(f"{editor} input[data-path=failure_ratio]", "7")
    page.click(f"{editor} button[type=submit]")
    confirm_change(page, "breaker")
    page.wait_for_selector(f"{editor} [data-error=failure_ratio]:not(:empty)")
    page.fill(f"{editor} input[data-path=failure_ratio]", "0.5")
    page.click(f"{editor} button[type=submit]")
    confirm_change(page, "breaker")
    page.wait_for_selector("section[data-service=web] p:has-text('circuit: closed')")
    screenshot(page, "protection")
    # an editor for every policy the API serves (before, the console's own list lacked when_no_node)
    _, document = fulcrum.api("GET", "/openapi.json")
    served = document["components"]["schemas"]["ServicePolicy"]["enum"]
    assert "when_no_node" in served
    shown = page.eval_on_selector_all("section[data-service=web] form[data-policy]", "forms => forms.map(f => f.dataset.policy)")
    assert shown == served
    # every field of a policy's schema has a control: a field added to the schema appears by itself
    fields = document["components"]["schemas"]["PolicySchemas"]["properties"]["circuit_breaker"]["properties"]
    shown = page.eval_on_selector_all("section[data-service=web] form[data-policy=circuit_breaker] [data-path]", "nodes => nodes.map(n => n.dataset.path)")
    assert set(fields) <= set(shown)
    editor = "section[data-service=web] form[data-policy=when_no_node]"
    page.select_option(f"{editor} select", "panic")
    page.click(f"{editor} button[type=submit]")
    confirm_change(page, "panic rather than refuse")
    wait_until(lambda: fulcrum.api("GET", "/config")[1]["config"]["services"]["web"].get("when_no_node") == "panic", what="when_no_node")


def test_the_layout_fits_a_narrow_window(page, fulcrum):
    page.set_viewport_size({"width": 420, "height": 800})
    sign_in(page, fulcrum)
    for name in ["overview", "services", "routes", "protection", "history", "audit"]:
        page.goto(fulcrum.url + "#/" + name)
        page.wait_for_selector(f"#page[data-page={name}] h1")
        page.wait_for_timeout(300)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (name, overflow)
    screenshot(page, "narrow-audit")


def test_an_operator_pauses_and_promotes_a_rollout(page, fulcrum):
    assert fulcrum.api("POST", "/services", {"name": "v2", "nodes": [{"name": "b2", "host": "127.0.0.1", "port": fulcrum.b.port}]}, if_match="*")[0] == 201
    route = {"name": "api", "match": {"path_prefix": "/api/"}, "split": {
        "targets": [{"service": "web", "weight": 100}, {"name": "canary", "service": "v2", "weight": 0}],
        "rollout": {"canary": "canary", "steps": [50, 100], "step_time": "1h"}}}
    assert fulcrum.api("PUT", "/routes/api", route, if_match="*")[0] == 200
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/routes")
    panel = "section[data-rollout=api]"
    page.wait_for_selector(f"{panel} .badge.up:has-text('running')")
    assert "web 100 %" in page.inner_text("#routes-table tr[data-route=api]")
    page.click(f"{panel} button[data-action=pause]")
    confirm_change(page, "hold on")
    page.wait_for_selector(f"{panel} .badge:has-text('paused')")
    screenshot(page, "rollout")
    page.click(f"{panel} button[data-action=promote]")
    confirm_change(page, "ship it")
    wait_until(lambda: fulcrum.api("GET", "/routes/api")[1].get("service") == "v2", what="the promotion")
    page.wait_for_selector("#routes-table tr[data-route=api] td:has-text('v2')")
    assert page.locator("section[data-rollout]").count() == 0
    assert {fulcrum.get("/api/x") for _ in range(5)} == {"b"}


def test_the_strategy_list_is_the_served_vocabulary_and_keeps_latency(page, fulcrum):
    """Before, the console had a list of strategies of its own without `latency`: a latency-aware
    service showed as round robin, and saving the form switched it."""
    _, document = fulcrum.api("GET", "/openapi.json")
    served = document["components"]["schemas"]["Strategy"]["enum"]
    assert "latency" in served
    status, _ = fulcrum.api("PATCH", "/services/web?message=latency", {"strategy": "latency", "latency": {"decay": "2s"}}, if_match="*")
    assert status == 200
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/services")
    select = "section[data-service=web] select[aria-label='strategy of web']"
    page.wait_for_selector(select)
    assert page.eval_on_selector_all(select + " option", "options => options.map(o => o.value)") == served
    assert page.input_value(select) == "latency"
    # saving the form as shown changes nothing: no new version, the strategy and its settings kept
    page.click("section[data-service=web] button:has-text('Save strategy')")
    confirm_change(page, "no change")
    wait_until(lambda: page.locator("#dialog[open]").count() == 0, what="the dialog to close")
    active = fulcrum.api("GET", "/config")[1]
    assert active["number"] == 2
    assert (active["config"]["services"]["web"]["strategy"], active["config"]["services"]["web"]["latency"]) == ("latency", {"decay": "2s"})
    # a pinned node is set with the strategy, and leaving latency drops its settings
    page.reload()  # the page the save re-renders, not the one it replaces
    page.wait_for_selector(select)
    page.select_option(select, "pinned")
    page.fill("section[data-service=web] input[aria-label='strategy setting of web']", "b")
    page.click("section[data-service=web] button:has-text('Save strategy')")
    confirm_change(page, "pin b")
    wait_until(lambda: fulcrum.api("GET", "/config")[1]["number"] >= 3, what="the new version")
    service = fulcrum.api("GET", "/config")[1]["config"]["services"]["web"]
    assert (service["strategy"], service["pinned_node"], "latency" in service) == ("pinned", "b", False)
    assert [fulcrum.get("/api/x") for _ in range(4)] == ["b"] * 4


def test_editing_a_node_keeps_its_tls_settings(page, fulcrum):
    """Before, the node dialog sent only the fields it shows: saving a TLS node made it plaintext."""
    tls = {"verify": False, "server_name": "a.internal"}
    status, _ = fulcrum.api("POST", "/services/web/nodes?message=tls", {"name": "c", "host": "127.0.0.1", "port": fulcrum.a.port, "tls": tls}, if_match="*")
    assert status in (200, 201)
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/services")
    row = "section[data-service=web] tr[data-node=c]"
    page.wait_for_selector(row + " .badge:has-text('TLS')")
    page.click(row + " button:has-text('Edit')")
    page.fill("#dialog-form #f-weight", "3")
    page.click("#save-node")
    page.wait_for_selector("#dialog[open] #change-message")
    # before, the DOM wrote the dialog's absent detail as the text "null" under its title
    assert "null" not in page.inner_text("#dialog-form")
    confirm_change(page, "c weighs 3")

    def node_c():
        nodes = fulcrum.api("GET", "/config")[1]["config"]["services"]["web"]["nodes"]
        return next(node for node in nodes if node["name"] == "c")
    wait_until(lambda: node_c().get("weight") == 3, what="the new weight")
    assert node_c()["tls"] == tls


def test_a_refused_node_edit_shows_the_reason_under_the_field(page, fulcrum):
    """Before, the change message replaced the node dialog's fields, and the reason was shown nowhere."""
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/services")
    page.click("section[data-service=web] tr[data-node=a] button:has-text('Edit')")
    page.fill("#dialog-form #f-port", "70000")
    page.click("#save-node")
    confirm_change(page, "a bad port")
    page.wait_for_selector("#dialog[open] [data-error=port]:has-text('70000')")
    assert page.input_value("#dialog-form #f-port") == "70000"


def test_the_overview_lists_served_certificates_with_the_days_they_have_left(page, fulcrum):
    sign_in(page, fulcrum)
    row = page.wait_for_selector("#certificates tbody tr")
    assert "console.test" in row.inner_text()
    assert f"127.0.0.1:{fulcrum.tls_port}" in row.inner_text()
    badge = page.wait_for_selector("#certificates .days-left")
    assert badge.inner_text() in ("19 d", "20 d")
    assert "ejected" in badge.get_attribute("class")  # the warning colour: under 30 days
    assert "PRIVATE KEY" not in page.content()


def test_a_certificate_uploaded_in_the_console_is_served_listed_and_can_be_removed(page, fulcrum, tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "90",
                    "-subj", "/CN=upload.test", "-addext", "subjectAltName=DNS:upload.test",
                    "-keyout", str(tmp_path / "up.key"), "-out", str(tmp_path / "up.pem")], check=True, capture_output=True)
    key = (tmp_path / "up.key").read_text()
    other_key = subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
                               check=True, capture_output=True, text=True).stdout
    sign_in(page, fulcrum)
    page.click("#upload-certificate")
    page.fill("#f-name", "upload")
    page.fill("#f-cert", (tmp_path / "up.pem").read_text())
    page.fill("#f-key", other_key)  # a key of another certificate first
    page.click("#save-certificate")
    confirm_change(page, "upload a certificate")
    page.wait_for_selector("[data-error=key]:has-text('is not the private key of the certificate')")
    page.fill("#f-key", key)
    page.click("#save-certificate")
    confirm_change(page, "upload a certificate")
    row = page.wait_for_selector("#certificates tbody tr:has-text('upload.test')")
    assert "uploaded: upload" in row.inner_text()
    served = fulcrum.served_subject("upload.test")
    assert served == "CN = upload.test", served
    assert key.splitlines()[1] not in page.content()
    page.click("#certificates tr:has-text('upload.test') .remove-certificate")
    confirm_change(page, "remove it")
    page.wait_for_selector("#certificates tbody tr:has-text('upload.test')", state="detached")
    assert fulcrum.served_subject("upload.test") is None  # no certificate for the name: refused


def test_the_overview_lists_the_instances_sharing_the_store(page, fulcrum):
    sign_in(page, fulcrum)
    row = page.wait_for_selector("#instances tbody tr")
    assert socket.gethostname() in row.inner_text()
    assert page.inner_text("#instances .instance-state") == "in sync"
    assert "v1" in row.inner_text()
    assert "store at version 1" in page.inner_text("#instances h2")


def test_an_access_rule_added_in_the_console_refuses_requests_counts_them_and_goes(page, fulcrum):
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/protection")
    editor = "section[data-scope=gateway] form[data-policy=access_rules]"
    page.click(f"{editor} button[data-add]")
    page.fill(f'{editor} [data-path="[0].name"]', "no-secrets")
    page.fill(f'{editor} [data-path="[0].deny.path"]', '{"prefix": "/api/secret"}')
    page.fill(f'{editor} [data-path="[0].status"]', "404")
    page.click(f"{editor} button[type=submit]")
    confirm_change(page, "hide the secret API")
    wait_until(lambda: fulcrum.api("GET", "/settings/access_rules")[1] == [{"name": "no-secrets", "deny": {"path": {"prefix": "/api/secret"}}, "status": 404}],
               what="the rule in the configuration")
    wait_until(lambda: fulcrum.status("/api/secret/x") == 404, what="the rule refusing")
    assert fulcrum.status("/api/open") == 200
    page.goto(fulcrum.url + "#/overview")
    page.goto(fulcrum.url + "#/protection")
    hits = page.wait_for_selector("#access-rule-hits tr[data-rule=no-secrets] td.hits")
    assert int(hits.inner_text()) >= 1
    screenshot(page, "access-rules")
    page.click(f"{editor} button:text-is('Remove')")
    confirm_change(page, "the secret API is public again")
    wait_until(lambda: fulcrum.status("/api/secret/x") == 200, what="the rule gone")
    page.wait_for_selector("#access-rule-hits:has-text('No access rules')")


def test_a_cc_ban_is_listed_and_lifted_in_the_console(page, fulcrum):
    assert fulcrum.api("PUT", "/settings/cc?message=cc", [{"name": "burst", "limit": 2, "window": "1m", "ban": "5m", "match": {"path": {"prefix": "/api/cc"}}}],
                       if_match="*")[0] == 200
    statuses = [fulcrum.status("/api/cc") for _ in range(8)]
    assert 429 in statuses
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/protection")
    row = page.wait_for_selector("#bans tr[data-rule=burst]")
    assert row.get_attribute("data-key") == "127.0.0.1"
    page.click("#bans button[data-lift='127.0.0.1']")
    page.wait_for_selector("#bans:has-text('No key is banned')")
    assert fulcrum.status("/api/cc") == 200
    assert fulcrum.api("DELETE", "/settings/cc?message=no%20cc", if_match="*")[0] == 200


def test_a_redirect_route_made_in_the_form_answers_and_editing_keeps_what_the_form_does_not_show(page, fulcrum):
    assert fulcrum.api("POST", "/routes?message=moved", {"name": "moved", "match": {"path_prefix": "/moved/"}, "service": "web",
                                                         "access_rules": [{"name": "moved-log", "deny": {"methods": ["DELETE"]}, "action": "log"}],
                                                         "response_headers": {"set": {"X-Moved": "yes"}}}, if_match="*")[0] == 201
    sign_in(page, fulcrum)
    page.goto(fulcrum.url + "#/routes")
    page.click("#routes-table tr[data-route=moved] button:has-text('Edit')")
    page.select_option("#route-form select[data-path=action]", "redirect")
    page.fill('#route-form [data-path="redirect.to"]', "https://example.com/new$path")
    page.fill('#route-form [data-path="redirect.status"]', "301")
    page.click("#save-route")
    confirm_change(page, "moved for good")
    page.wait_for_selector("#routes-table tr[data-route=moved] td:has-text('redirect 301')")
    route = fulcrum.api("GET", "/routes/moved")[1]
    assert route["redirect"] == {"to": "https://example.com/new$path", "status": 301}
    assert "service" not in route
    assert route["access_rules"][0]["name"] == "moved-log" and route["response_headers"] == {"set": {"X-Moved": "yes"}}
    connection = http.client.HTTPConnection("127.0.0.1", fulcrum.proxy_port, timeout=10)
    connection.request("GET", "/moved/page")
    reply = connection.getresponse()
    reply.read()
    connection.close()
    assert reply.status == 301 and reply.getheader("Location") == "https://example.com/new/moved/page"
    assert reply.getheader("X-Moved") == "yes"
    screenshot(page, "route-redirect")
    page.wait_for_load_state("networkidle")  # the form's last dry run, still in flight, would fail when the page closes
