"""docker/ cannot be built here (no Docker engine), so check what can be checked without one:
the compose file's structure, and that every file and module it names exists."""

import importlib
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def test_the_compose_file_has_the_services_a_deployment_needs():
    assert {"postgres", "redis", "migrate", "web", "worker", "beat"} <= set(COMPOSE["services"])
    assert COMPOSE["services"]["web"]["ports"] == ["8000:8000"]


def test_app_services_point_at_the_compose_postgres_and_redis():
    for name in ["migrate", "web", "worker", "beat"]:
        env = COMPOSE["services"][name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert COMPOSE["services"][name]["build"]["dockerfile"] == "docker/Dockerfile"


def test_every_dependency_is_a_defined_service():
    services = COMPOSE["services"]
    for service in services.values():
        for dependency in service.get("depends_on", {}):
            assert dependency in services


def test_the_commands_name_modules_that_exist():
    asgi = re.search(r'"(webapp\.asgi):application"', DOCKERFILE)
    assert asgi and hasattr(importlib.import_module(asgi.group(1)), "application")
    worker = COMPOSE["services"]["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "webapp", "worker"]
    assert COMPOSE["services"]["beat"]["command"][:4] == ["celery", "-A", "webapp", "beat"]
    assert "ensure_admin" in " ".join(COMPOSE["services"]["migrate"]["command"])
    assert (ROOT / "webapp" / "management" / "commands" / "ensure_admin.py").exists()


def test_the_dockerfile_copies_what_exists_and_pins_the_cpu_torch():
    for source in re.findall(r"^COPY (\S+)", DOCKERFILE, flags=re.M):
        assert (ROOT / source).exists(), source
    assert "torch==2.13.0" in DOCKERFILE
