"""Mosquitto security the controller manages: per-device passwords, per-device ACLs, a private CA for TLS.

Mosquitto 2.0 reads a password file (``user:$7$…`` lines, PBKDF2-SHA512) and an ACL file, and rereads
both on SIGHUP. On that reload it re-checks every connected client against the new password file and
drops the ones no longer in it, which is how a revoked device loses a live session at once (tested in
tests/test_broker_security.py). The controller rewrites both files from its database whenever a device
is registered, enrolled, re-enrolled or revoked, and sends SIGHUP to the broker's pid (from the
``pid_file`` Mosquitto writes). Why files and not the dynamic-security plugin: in 2.0.11 dynsec does not
substitute ``%u`` in role ACLs, so it would need one role per agent managed over MQTT; two files
rewritten atomically are simpler to read, back up and audit. See docs/security.md.

Accounts the registry does not hold (another controller replica, a read-only monitor, test tools) are
listed in a ``service-accounts`` file beside the password file; every rewrite carries them over. The
broker binds each client id to its account (``use_username_as_clientid``), so every account holds at
most one connection: two programs sharing an account would disconnect each other.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import os
import re
import secrets
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devices.protocol import Topics

log = logging.getLogger(__name__)

#: Mosquitto 2.0's password hash: PBKDF2-HMAC-SHA512, 101 rounds, 12-byte salt ("$7$" in its files).
_PBKDF2_ROUNDS = 101
_SALT_BYTES = 12


def new_password() -> str:
    """A fresh broker password (32 URL-safe characters, 192 bits)."""
    return secrets.token_urlsafe(24)


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The ``$7$…`` hash Mosquitto's password file holds for ``password``."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ROUNDS)
    return f"$7${_PBKDF2_ROUNDS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches a ``$7$`` hash (constant-time compare)."""
    try:
        _, kind, rounds, salt_b64, digest_b64 = stored.split("$")
        if kind != "7":
            return False
        digest = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt_b64), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(base64.b64encode(digest).decode(), digest_b64)


@dataclass(frozen=True, slots=True)
class BrokerAccount:
    """One line of the password file and the ACL that goes with it.

    An agent's ``ward`` gives it that ward's group topics; ``legacy`` (an agent that has not yet said it
    listens there, docs/protocol.md §2 *Wards*) keeps the legacy group topics of its zones readable too.
    """

    username: str
    password_hash: str
    zones: tuple[str, ...] = ()
    ward: str | None = None
    legacy: bool = True


ServiceAccess = Literal["read", "readwrite"]
#: The file of service accounts, in the directory of the password file (docs/security.md).
SERVICE_ACCOUNTS_FILE = "service-accounts"
#: What Mosquitto accepts as a username in both files without quoting trouble (no ``:``, no spaces).
_SERVICE_USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    """A broker account outside the device registry, with the whole ``lp/#`` tree to read or read and write."""

    username: str
    access: ServiceAccess
    password_hash: str


def render_service_accounts(accounts: Sequence[ServiceAccount]) -> str:
    """The service-accounts file: ``username access hash`` per line."""
    head = "# loaphuong broker service accounts: username, access (read | readwrite) on lp/#, password hash\n"
    return head + "".join(f"{a.username} {a.access} {a.password_hash}\n" for a in accounts)


def parse_service_accounts(text: str, source: str = SERVICE_ACCOUNTS_FILE) -> list[ServiceAccount]:
    """The accounts of a service-accounts file; a malformed line is logged and skipped, never fatal.

    A typo in a file an operator edits by hand must not stop the controller from keeping the device
    accounts in step, so the bad line is left out (that account cannot log in) and named in the log.
    """
    accounts: list[ServiceAccount] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        problem = ""
        if len(parts) != 3:
            problem = "expected: username access hash"
        elif not _SERVICE_USERNAME.fullmatch(parts[0]):
            problem = f"unusable username {parts[0]!r}"
        elif parts[1] not in get_args(ServiceAccess):
            problem = f"access must be read or readwrite, not {parts[1]!r}"
        elif not parts[2].startswith(("$7$", "$6$")):
            problem = "the hash is not one Mosquitto reads ($7$ or $6$)"
        elif parts[0] in seen:
            problem = f"{parts[0]!r} is listed twice"
        if problem:
            log.error("%s line %d skipped: %s", source, number, problem)
            continue
        seen.add(parts[0])
        accounts.append(ServiceAccount(parts[0], parts[1], parts[2]))  # type: ignore[arg-type]
    return accounts


def agent_acl(agent_id: str, zones: Iterable[str], ward: str | None = None, legacy: bool = True,
              fleet_wide: bool = True) -> tuple[list[str], list[str]]:
    """(topics the agent may read, topics it may write).

    Read: its own topics and the controller's status; its ward's ``all`` and its zones' topics in that
    ward; while ``legacy``, also its zones' legacy topics and, with ``fleet_wide`` (every agent is in one
    ward, so the fleet's ``all`` reaches that ward alone), the legacy ``all``. Nothing of another ward.
    Write: its own status, info, state, events and replies, nothing else.
    """
    zone_list = list(zones)
    read = Topics.own_subscriptions(agent_id)
    if ward is not None:
        read += Topics.ward_group_subscriptions(ward, zone_list)
    if legacy or ward is None:
        read += Topics.legacy_group_subscriptions(zone_list, fleet_wide=fleet_wide)
    write = [Topics.status(agent_id), Topics.info(agent_id), Topics.state(agent_id),
             Topics.agent(agent_id, "event/+"), Topics.reply(agent_id)]
    return read, write


def render_password_file(accounts: Sequence[BrokerAccount]) -> str:
    """The password file: one ``username:hash`` line per account."""
    for a in accounts:
        if ":" in a.username or "\n" in a.username or not a.username:
            raise ValueError(f"unusable broker username {a.username!r}")
    return "".join(f"{a.username}:{a.password_hash}\n" for a in accounts)


def render_acl_file(controller_username: str, agents: Sequence[BrokerAccount], revoked: Sequence[str] = (),
                    services: Sequence[ServiceAccount] = (), one_ward: bool = True) -> str:
    """The ACL file: the controller may use the whole tree; each agent only its own topics and its own
    ward's groups (:func:`agent_acl`); each service account the whole tree, read-only or read-write.

    A revoked device keeps one line, write to its own status topic: when the reload drops its session
    the broker publishes its last will (``offline``) under its name, and without that line the will would
    be refused and the fleet would show a revoked device online. It has no password line, so it can
    never log in to use it.
    """
    lines = ["# generated by the loaphuong controller from its device registry; rewritten on every change",
             f"user {controller_username}", "topic readwrite lp/#", ""]
    # The legacy fleet-wide "all" reaches every agent that reads it: only while the deployment has one ward
    # (``one_ward``) and every agent serves it.
    fleet_wide = one_ward and len({a.ward for a in agents}) <= 1
    for agent in agents:
        read, write = agent_acl(agent.username, agent.zones, agent.ward, agent.legacy, fleet_wide)
        lines.append(f"user {agent.username}")
        lines += [f"topic read {t}" for t in read]
        lines += [f"topic write {t}" for t in write]
        lines.append("")
    for service in services:
        lines += [f"user {service.username}", f"topic {service.access} lp/#", ""]
    for agent_id in revoked:
        lines += ["# revoked: last will only (no password line)", f"user {agent_id}",
                  f"topic write {Topics.status(agent_id)}", ""]
    return "\n".join(lines)


def write_atomically(path: Path, text: str, mode: int = 0o640) -> None:
    """Replaces ``path`` in one step, so the broker never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def signal_reload(pid_file: Path) -> bool:
    """Sends SIGHUP to the broker whose pid is in ``pid_file``; False (logged) if there is none."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        log.error("could not signal the broker to reload its password/ACL files (%s): %s", pid_file, exc)
        return False
    return True


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Where the broker's password file, ACL file and pid file are."""

    password_file: Path
    acl_file: Path
    pid_file: Path | None

    @property
    def service_accounts_file(self) -> Path:
        """The service accounts carried over into every rewrite (beside the password file)."""
        return self.password_file.parent / SERVICE_ACCOUNTS_FILE

    def service_accounts(self, controller_username: str = "", devices: Iterable[str] = ()) -> list[ServiceAccount]:
        """The service accounts on file, minus the controller's own and any a device's name has taken."""
        try:
            # Undecodable bytes become U+FFFD, so such a line is skipped as malformed instead of raising.
            text = self.service_accounts_file.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return []
        taken = set(devices)
        kept = []
        for account in parse_service_accounts(text, str(self.service_accounts_file)):
            if account.username in taken:
                # A device registered under a service account's name must never inherit lp/# access.
                log.error("service account %r skipped: a device has that name", account.username)
            elif account.username != controller_username:
                kept.append(account)
        return kept

    def write(self, controller: BrokerAccount, agents: Sequence[BrokerAccount], revoked: Sequence[str] = (),
              one_ward: bool = True) -> bool:
        """Rewrites both files (with the service accounts) and asks the broker to reload; True if signalled.
        ``one_ward``: the deployment has a single ward (the legacy fleet-wide group may then be read)."""
        # Controller replicas share one service-accounts file listing all of them: each skips its own
        # line (its password is in its settings) and carries the others over.
        services = self.service_accounts(controller.username, [*(a.username for a in agents), *revoked])
        service_logins = [BrokerAccount(s.username, s.password_hash) for s in services]
        write_atomically(self.password_file, render_password_file([controller, *agents, *service_logins]))
        write_atomically(self.acl_file, render_acl_file(controller.username, agents, revoked, services, one_ward))
        if self.pid_file is None:
            return False
        return signal_reload(self.pid_file)


# ------------------------------------------------------------------------------------------------ TLS


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """The project's CA and the broker's server certificate signed by it (PEM files)."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    write_atomically(path, pem.decode(), mode=0o600)


def ensure_tls(directory: Path, server_names: Sequence[str] = ("127.0.0.1",), days: int = 3650) -> TlsFiles:
    """Creates (once) a CA and a server certificate for ``server_names`` (IPs or DNS names) in ``directory``."""
    files = TlsFiles(directory / "ca.crt", directory / "ca.key", directory / "server.crt", directory / "server.key")
    if all(p.exists() for p in (files.ca_cert, files.ca_key, files.server_cert, files.server_key)):
        return files
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "loaphuong broker CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server_key = ec.generate_private_key(ec.SECP256R1())
    alt: list[x509.GeneralName] = []
    for name in server_names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_names[0])]))
              .issuer_name(ca_name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=days))
              .add_extension(x509.SubjectAlternativeName(alt), critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    _write_key(files.ca_key, ca_key)
    _write_key(files.server_key, server_key)
    write_atomically(files.ca_cert, ca.public_bytes(serialization.Encoding.PEM).decode(), mode=0o644)
    write_atomically(files.server_cert, server.public_bytes(serialization.Encoding.PEM).decode(), mode=0o644)
    return files
