"""An in-process controller for the account, role-matrix and audit tests (no broker: the API serves anyway)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from controller.app import create_app
from controller.settings import Settings
from controller.tools.local_stack import free_port

PASSWORD = "mat-khau-dai-1"


@dataclass
class App:
    """A TestClient on a real app with a temp data dir, the first admin's token and helpers."""

    client: TestClient
    data_dir: Path
    admin_token: str

    def call(self, method: str, path: str, token: str | None = None, body: Any = None,
             **kwargs: Any) -> tuple[int, Any]:
        """A request with an optional bearer token; the JSON body back (or the text)."""
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        response = self.client.request(method, path, json=body, headers=headers, **kwargs)
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, response.text

    def add_user(self, username: str, roles: list[str], password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
        """Creates a user as the first admin."""
        status, body = self.call("POST", "/api/v1/users", self.admin_token,
                                 {"username": username, "password": password, "roles": roles, **extra})
        assert status == 201, body
        result: dict[str, Any] = body
        return result

    def login(self, username: str, password: str = PASSWORD, cookie: bool = False) -> dict[str, Any]:
        """Logs in (without touching the client's cookie jar unless ``cookie``)."""
        response = self.client.post("/api/v1/auth/login", json={"username": username, "password": password,
                                                                "cookie": cookie})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@contextmanager
def running_app(tmp_path: Path, **settings: Any) -> Iterator[App]:
    """The real app (lifespan and all) pointed at a closed MQTT port on 127.0.0.1."""
    data_dir = tmp_path / "controller"
    app = create_app(Settings(data_dir=data_dir, http_host="127.0.0.1", mqtt_host="127.0.0.1",
                              mqtt_port=free_port(), **settings))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        token = (data_dir / "admin.token").read_text().strip()
        yield App(client, data_dir, token)
