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


def test_a_quick_worker_takes_the_default_queue_so_downloads_never_wait_behind_a_search():
    quick = COMPOSE["services"]["quick-worker"]
    command = quick["command"]
    assert command[:4] == ["celery", "-A", "webapp", "worker"] and command[command.index("-Q") + 1] == "default"
    assert "quick@$$HOSTNAME" in " ".join(quick["healthcheck"]["test"]) or "quick@$HOSTNAME" in " ".join(
        quick["healthcheck"]["test"]
    )


def test_workers_scale_and_take_the_queues_of_a_spread_out_search():
    from django.conf import settings

    worker = COMPOSE["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker  # `up --scale worker=4` needs neither
    queues = worker["command"][worker["command"].index("-Q") + 1].split(",")
    assert queues == [settings.NAS_QUEUES[role] for role in ("default", "search", "trials")]
    gpu = COMPOSE["services"]["gpu-worker"]
    assert gpu["profiles"] == ["gpu"] and gpu["command"][gpu["command"].index("-Q") + 1] == "trials-gpu,trials"
    assert gpu["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    assert COMPOSE["services"]["flower"]["profiles"] == ["flower"]


def test_every_long_running_service_has_a_healthcheck_that_fits_it():
    services = COMPOSE["services"]
    for name in ["postgres", "redis", "worker", "gpu-worker"]:
        assert services[name]["healthcheck"]["test"], name
    assert "inspect ping" in services["worker"]["healthcheck"]["test"][1]  # not the image's web check
    for name in ["beat", "migrate"]:
        assert services[name]["healthcheck"] == {"disable": True}  # the image's check asks the web server
    assert "HEALTHCHECK" in DOCKERFILE and "/healthz" in DOCKERFILE  # the web server's own


def test_the_env_example_sets_every_variable_the_compose_file_requires():
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker" / "docker-compose.yml").read_text()))
    example = dict(
        line.split("=", 1) for line in (ROOT / "docker" / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )  # fmt: skip
    assert required == {"SECRET_KEY", "ADMIN_PASSWORD", "FLOWER_BASIC_AUTH"} and required <= set(example)
    assert "docker/.env" in (ROOT / ".gitignore").read_text().splitlines()  # secrets are never committed


def test_no_secret_has_a_default_and_flower_listens_on_this_machine_only():
    text = (ROOT / "docker" / "docker-compose.yml").read_text()
    # A password with a default is a password everyone knows: each must be given (`:?`).
    assert re.findall(r"\$\{(\w*(?:PASSWORD|AUTH|SECRET)\w*)(?::?-|\})", text) == []
    flower = COMPOSE["services"]["flower"]
    assert re.fullmatch(r"\$\{FLOWER_BASIC_AUTH:\?.+\}", flower["environment"]["FLOWER_BASIC_AUTH"])
    assert flower["ports"] == ["127.0.0.1:5555:5555"]
    example = (ROOT / "docker" / ".env.example").read_text()
    assert "change-me" not in example and "change-me" not in text
