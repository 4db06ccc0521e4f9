"""What `make run` does, as separate processes on a fresh instance folder: init prints the admin
password once, demo loads once, serve answers real HTTP with the embedded scheduler."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests

from .conftest import free_port

pytestmark = pytest.mark.slow


def _cli(env, *args, timeout=120) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "contentops", *args], env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def _wait_until_up(url: str, proc: subprocess.Popen, log, seconds: float = 60) -> float:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/api/v1/health", timeout=2).status_code in (200, 503):
                return time.monotonic() - start
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError("serve did not answer in time")


def test_init_demo_serve_like_make_run(tmp_path):
    env = {**os.environ, "CONTENTOPS_INSTANCE_PATH": str(tmp_path / "instance")}
    env.pop("CONTENTOPS_DATABASE_URL", None)
    env.pop("CONTENTOPS_SECRET_KEY", None)
    first = _cli(env, "init")
    match = re.search(r"Password \(shown once[^)]*\): (\S+)", first.stdout)
    assert match and "admin@example.com" in first.stdout
    password = match.group(1)
    assert "Loaded demo data" in _cli(env, "demo", "--if-empty").stdout
    assert (tmp_path / "instance" / "contentops.db").exists()
    assert (tmp_path / "instance" / "secret_key").exists()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "contentops", "serve", "--host",
                                 "127.0.0.1", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(url, proc, log)
        health = requests.get(f"{url}/api/v1/health", timeout=5).json()
        assert health["database"] == "ok"
        session = requests.Session()
        login_page = session.get(f"{url}/login", timeout=5)
        assert login_page.status_code == 200
        assert "waitress" in login_page.headers.get("Server", "").lower() or \
            login_page.headers.get("Server") == "ContentOps"
        csrf = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page.text)
        csrf = csrf or re.search(r'name="csrf_token" value="([^"]+)"', login_page.text)
        signed_in = session.post(f"{url}/login", data={
            "csrf_token": csrf.group(1), "email": "admin@example.com", "password": password},
            timeout=10, allow_redirects=False)
        assert signed_in.status_code == 302, signed_in.text[:500]
        posts = session.get(f"{url}/posts/?sort=-reads", timeout=10)
        assert posts.status_code == 200 and posts.text.count("data-post=") >= 20
        for path in ("/settings/", "/settings/audiences/", "/users/", "/calendar/"):
            assert session.get(f"{url}{path}", timeout=10).status_code == 200, path
        zh = session.get(f"{url}/posts/", headers={"Accept-Language": "zh-CN"}, timeout=10)
        assert "已发布" in zh.text
        css = session.get(f"{url}/static/vendor/bootstrap/bootstrap.min.css", timeout=10)
        assert css.status_code == 200 and len(css.content) > 10_000
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
