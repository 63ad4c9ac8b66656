"""The console's page helpers (``console/html.py``) and its Content-Security-Policy."""

from __future__ import annotations

from openkvs.config import Settings
from openkvs.console import html as h
from openkvs.console.routes import media_origins


def test_every_value_is_escaped() -> None:
    evil = "<script>\"x\"&'y'"
    assert h.esc(evil) == "&lt;script&gt;&quot;x&quot;&amp;&#x27;y&#x27;"
    assert h.link("/a?b=1&c=2", evil) == (
        '<a href="/a?b=1&amp;c=2">&lt;script&gt;&quot;x&quot;&amp;&#x27;y&#x27;</a>'
    )
    page = h.page(evil, "", user=evil, csrf='"><x')
    assert '<script>"x"' not in page and 'data-csrf="&quot;&gt;&lt;x"' in page
    assert h.text_input("L", "n", '"><b>') == (
        '<label>L <input name="n" value="&quot;&gt;&lt;b&gt;"></label>'
    )


def test_urls_encode_each_part() -> None:
    assert h.url("buckets", "b", "submit", key="a b/c&d.mp4") == (
        "/console/buckets/b/submit?key=a%20b%2Fc%26d.mp4"
    )
    assert h.url("presets", "../x") == "/console/presets/..%2Fx"
    assert h.url("tasks", status="", user="") == "/console/tasks"


def test_players_may_follow_redirects_to_the_s3_store() -> None:
    assert media_origins(Settings()) == ()
    s3 = Settings(storage="s3", s3_endpoint_url="http://minio:9000/base")
    assert media_origins(s3) == ("http://minio:9000",)
    public = Settings(
        storage="s3",
        s3_endpoint_url="http://minio:9000",
        s3_public_endpoint_url="https://m.example",
    )
    assert media_origins(public) == ("https://m.example",)
    assert media_origins(Settings(storage="s3")) == ("https://*.amazonaws.com",)
    csp = h.security_headers(("http://minio:9000",))["Content-Security-Policy"]
    assert "media-src 'self' http://minio:9000 blob:" in csp
    assert "script-src 'self';" in h.SECURITY_HEADERS["Content-Security-Policy"]
