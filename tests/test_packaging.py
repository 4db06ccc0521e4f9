"""The built wheel carries templates, static files, translations and migrations."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

SMOKE = r"""
import sys
from contentops import create_app
from contentops.extensions import db
from flask_migrate import upgrade

app = create_app()
assert "site-packages" in app.root_path or "target" in app.root_path, app.root_path
with app.app_context():
    upgrade()
client = app.test_client()
login = client.get("/login", headers={"Accept-Language": "zh-CN"})
assert login.status_code == 200 and "登录" in login.get_data(as_text=True), login.status_code
css = client.get("/static/vendor/bootstrap/bootstrap.min.css")
assert css.status_code == 200 and len(css.data) > 10000
print("ok")
"""


@pytest.mark.slow
def test_wheel_installs_and_serves_pages(tmp_path):
    if not (ROOT / "static/vendor/bootstrap/bootstrap.min.css").exists():
        pytest.fail("static/vendor is missing: run `make test` (npm ci + vendor step) first")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                    str(dist), str(ROOT)], check=True, cwd=tmp_path)
    wheel = next(dist.glob("contentops-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("contentops/templates/base.html",
                     "contentops/static/css/app.css",
                     "contentops/static/vendor/bootstrap/bootstrap.min.css",
                     "contentops/translations/zh/LC_MESSAGES/messages.mo",
                     "contentops/migrations/env.py",
                     "contentops/migrations/alembic.ini"):
        assert required in names, required
    assert any(n.startswith("contentops/migrations/versions/") for n in names)

    target = tmp_path / "target"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet",
                    "--target", str(target), str(wheel)], check=True)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(target), CONTENTOPS_INSTANCE_PATH=str(tmp_path / "inst"))
    # Run from an empty directory so the checkout cannot be imported by accident.
    work = tmp_path / "elsewhere"
    work.mkdir()
    code = f"import sys; sys.path.insert(0, {str(target)!r}); exec({SMOKE!r})"
    result = subprocess.run([sys.executable, "-I", "-c", code], cwd=work, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_checkout_keeps_templates_static_and_migrations_beside_the_package(tmp_path):
    for name in ("templates", "static", "migrations"):
        folder = ROOT / name
        assert folder.is_dir() and not folder.is_symlink(), name
        assert not (ROOT / "contentops" / name).exists(), f"contentops/{name} is back"
    from contentops import create_app

    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path),
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.db'}"})
    assert Path(app.template_folder) == ROOT / "templates"
    assert Path(app.static_folder) == ROOT / "static"
    assert Path(app.extensions["migrate"].directory) == ROOT / "migrations"
