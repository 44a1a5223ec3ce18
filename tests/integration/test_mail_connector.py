"""The SMTP connector (connectors/mail.py) against a real SMTP server in-process (aiosmtpd):
STARTTLS before the login and the message, a login refused, a recipient refused for good, a
server that refuses for now; and a password never sent in clear to another host."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connectors.mail import SmtpMailer
from connectors.message_errors import NotSentYet, Refused
from connectors.sandbox.mailsink import MailSink, running_mail_sink
from state.store import StateStore
from sync.notify.build import build_notifier
from sync.settings import ConfigError, load_settings


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Logins:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        assert isinstance(data, LoginPassword)
        login = (data.login.decode(), data.password.decode())
        self.seen.append(login)
        return AuthResult(success=login == ("dinas", "rahasia-smtp"), handled=False)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[MailSink, _Logins, ssl.SSLContext, int]]:
    cert, key = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=str(cert))
    sink = MailSink(None)
    logins = _Logins()
    port = _free_port()
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=logins,
        auth_required=True,
        ready_timeout=10,
    )
    controller.start()
    try:
        yield sink, logins, client_tls, port
    finally:
        controller.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "dinas@example.go.id"
    message["To"] = to
    message["Subject"] = "Daftar tindakan"
    message["Message-ID"] = "<abc@ekinerja-sync>"
    message.set_content("Yth. Operator,\n" + "baris panjang " * 40 + "\n")
    return message


def test_starttls_then_login_then_the_message(
    tls_server: tuple[MailSink, _Logins, ssl.SSLContext, int],
) -> None:
    sink, logins, client_tls, port = tls_server
    marked: list[bool] = []
    mailer = SmtpMailer(
        "127.0.0.1", port, starttls=True, user="dinas", password="rahasia-smtp", tls=client_tls
    )
    answer = mailer.send(_message("tu@sd.example"), ["tu@sd.example"], lambda: marked.append(True))
    assert answer.startswith("250")
    assert marked == [True]
    assert logins.seen == [("dinas", "rahasia-smtp")]
    assert sink.received[0].message_id == "<abc@ekinerja-sync>"
    assert "baris panjang" in sink.received[0].text

    wrong = SmtpMailer(
        "127.0.0.1", port, starttls=True, user="dinas", password="salah", tls=client_tls
    )
    with pytest.raises(NotSentYet, match="login was refused") as refused:
        wrong.send(_message("tu@sd.example"), ["tu@sd.example"], lambda: marked.append(True))
    assert "salah" not in str(refused.value)
    # Without STARTTLS the server refuses before anything is sent: nothing marked.
    clear = SmtpMailer("127.0.0.1", port, starttls=False, user="", password="")
    with pytest.raises(NotSentYet):
        clear.send(_message("tu@sd.example"), ["tu@sd.example"], lambda: marked.append(True))
    assert marked == [True]
    assert len(sink.received) == 1


class _Picky(MailSink):
    async def handle_RCPT(  # aiosmtpd calls it by this name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address.startswith("gone"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def test_refused_for_good_and_refused_for_now() -> None:
    sink = _Picky(None)
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, ready_timeout=10)
    controller.start()
    try:
        mailer = SmtpMailer("127.0.0.1", port, starttls=False)
        with pytest.raises(Refused, match="550"):
            mailer.send(_message("gone@sd.example"), ["gone@sd.example"], lambda: None)
        # One address of two refused: the message goes to the other, the answer says so.
        answer = mailer.send(
            _message("tu@sd.example"), ["gone@sd.example", "tu@sd.example"], lambda: None
        )
        assert "refused: gone@sd.example" in answer
        assert sink.received[0].recipients == ("tu@sd.example",)
        sink.refuse = "451 4.3.0 try again later"
        with pytest.raises(NotSentYet, match="451"):
            mailer.send(_message("tu@sd.example"), ["tu@sd.example"], lambda: None)
    finally:
        controller.stop()
    with pytest.raises(NotSentYet, match="cannot connect"):
        SmtpMailer("127.0.0.1", port, starttls=False, timeout_s=2).send(
            _message("tu@sd.example"), ["tu@sd.example"], lambda: None
        )


def test_a_password_never_goes_in_clear_to_another_host(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        overrides={
            "state": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "notify": {"smtp": {"host": "mail.dinas.example", "user": "dinas", "password": "x"}},
        },
    )
    store = StateStore.__new__(StateStore)  # never reached: the settings are refused first
    with pytest.raises(ConfigError, match="STARTTLS"), build_notifier(settings, store, actor="t"):
        pass
    with running_mail_sink(None) as sink:  # to this machine's own sink it may
        local = load_settings(
            None,
            overrides={"notify": {"smtp": {"port": sink.port, "user": "u", "password": "p"}}},
        )
        with build_notifier(local, store, actor="t") as notifier:
            assert set(notifier.channels) == {"email"}
