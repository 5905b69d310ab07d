"""Throwaway TLS for tests: a certificate authority made on the spot (the `cryptography` library),
server certificates it signs, and TLS-only PostgreSQL, Redis and RabbitMQ servers on free ports
that present them. Built on the chaos suite's throwaway servers (tests/chaos/services.py): the
machine's shared services are never touched.

Each server listens on 127.0.0.1 and 127.0.0.2 (both loopback); its certificate names 127.0.0.1 and
localhost only, so a client that dials 127.0.0.2 meets a certificate for another host name.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.chaos import services

DEPLOY_TLS = Path(__file__).resolve().parents[2] / "deploy" / "tls"  # compose's TLS server settings
PASSWORD = "tls-test-password"  # the postgres user's: compose's pg_hba asks hostssl for a password
SERVER_NAMES = ("localhost", "127.0.0.1")  # what a server certificate names
OTHER_ADDRESS = "127.0.0.2"  # the same servers, dialed by a name their certificates do not hold


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


@dataclass
class ServerCert:
    cert: Path
    key: Path


class CertificateAuthority:
    """A self-signed CA (P-256) valid for a day; `issue()` signs server certificates with it."""

    def __init__(self, directory: Path, name: str = "tradingapp test CA"):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.cert = self.dir / "ca.crt"
        self.cert.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name: str, hosts: tuple[str, ...] = SERVER_NAMES) -> ServerCert:
        """A server certificate (and its key) for `hosts`: DNS names and IP addresses."""
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(hosts[0]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        pair = ServerCert(self.dir / f"{name}.crt", self.dir / f"{name}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return pair


def _copy_for(pair: ServerCert, directory: Path, user: str | None) -> ServerCert:
    """The pair copied where a server (running as `user`) reads it: the key 0600, its owner the user."""
    directory.mkdir(parents=True, exist_ok=True)
    copy = ServerCert(directory / pair.cert.name, directory / pair.key.name)
    shutil.copyfile(pair.cert, copy.cert)
    shutil.copyfile(pair.key, copy.key)
    copy.key.chmod(0o600)
    if user:
        for path in (directory, copy.cert, copy.key):
            shutil.chown(path, user, user)
    return copy


class TlsPostgres(services.Postgres):
    """PostgreSQL that takes TLS only: ssl=on with the CA's certificate, pg_hba with `hostssl` lines
    and a `hostnossl ... reject` (a plain connection is turned away by the server itself)."""

    def __init__(self, root: Path, ca: CertificateAuthority):
        super().__init__(root)
        self.ca = ca

    def start(self) -> TlsPostgres:
        if not self.data.exists():
            super().start()  # initdb and a first start (plain), then configured and restarted
            self._run("psql", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-c",
                      f"ALTER USER postgres PASSWORD '{PASSWORD}'")  # fmt: skip
            self.stop()
            tls = _copy_for(self.ca.issue("postgres"), self.dir / "tls", self.user)
            # compose's own pg_hba (deploy/tls/pg_hba.conf): hostnossl reject, hostssl with a password
            shutil.copyfile(DEPLOY_TLS / "pg_hba.conf", self.data / "pg_hba.conf")
            with open(self.data / "postgresql.conf", "a") as conf:
                conf.write(
                    f"ssl = on\nssl_cert_file = '{tls.cert}'\nssl_key_file = '{tls.key}'\n"
                    f"listen_addresses = '127.0.0.1,{OTHER_ADDRESS}'\npassword_encryption = 'scram-sha-256'\n"
                )
        options = f"-p {self.port} -k {self.dir} -c max_connections=300 -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", options, "-w", "start")
        return self


class TlsRedis(services.Redis):
    """redis-server with no plain port (--port 0), TLS on a free port, no client certificates asked."""

    def __init__(self, root: Path, ca: CertificateAuthority):
        super().__init__(root)
        self.ca = ca

    def start(self) -> TlsRedis:
        tls = self.ca.issue("redis")
        argv = [
            "redis-server",
            "--port", "0",
            "--tls-port", str(self.port),
            "--tls-cert-file", str(tls.cert),
            "--tls-key-file", str(tls.key),
            "--tls-ca-cert-file", str(self.ca.cert),
            "--tls-auth-clients", "no",
            "--bind", "127.0.0.1", OTHER_ADDRESS,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
        ]  # fmt: skip
        with open(self.dir / "server.log", "ab") as log:
            self.popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        services._wait_port(self.port, 10, "redis-server", lambda: self.popen.poll() is None)
        return self


class TlsRabbitMQ(services.RabbitMQ):
    """A second RabbitMQ node, `tls-<id>@localhost`, whose only listener is AMQP over TLS."""

    def __init__(self, root: Path, ca: CertificateAuthority):
        super().__init__(root)
        self.node = self.node.replace("chaos-", "tls-", 1)
        tls = ca.issue("rabbitmq")
        # compose's own TLS settings (deploy/tls/rabbitmq-tls.conf), on this node's port and files,
        # listening on loopback only.
        lines = (DEPLOY_TLS / "rabbitmq-tls.conf").read_text().splitlines()
        conf = "".join(line + "\n" for line in lines if line and not line.startswith("#"))
        conf = conf.replace(
            "listeners.ssl.default = 5671",
            f"listeners.ssl.1 = 127.0.0.1:{self.port}\nlisteners.ssl.2 = {OTHER_ADDRESS}:{self.port}",
        )
        for name, path in (("ca.crt", ca.cert), ("rabbitmq.crt", tls.cert), ("rabbitmq.key", tls.key)):
            conf = conf.replace(f"/var/lib/rabbitmq/tls/{name}", str(path))
        assert "/var/lib/rabbitmq" not in conf and "default = 5671" not in conf, conf
        (self.dir / "rabbitmq.conf").write_text(conf + "loopback_users = none\n")
        # Without these the node would open its plain listener on them; the conf above has none.
        for name in ("RABBITMQ_NODE_PORT", "RABBITMQ_NODE_IP_ADDRESS"):
            self.env.pop(name)
        self.env["RABBITMQ_NODENAME"] = self.node


class TlsServices:
    """The CA, a second CA that signed nothing here, and the three TLS-only servers, in one
    temporary directory (`root`, made by the caller)."""

    def __init__(self, root: Path):
        self.root = root
        os.chmod(root, 0o755)  # the postgres user walks into it
        self.ca = CertificateAuthority(root / "ca")
        self.other_ca = CertificateAuthority(root / "other-ca", "another CA")
        self.postgres = TlsPostgres(root, self.ca)
        self.redis = TlsRedis(root, self.ca)
        self.rabbitmq = TlsRabbitMQ(root, self.ca)

    def start(self) -> TlsServices:
        try:
            self.redis.start()
            self.postgres.start()
            self.rabbitmq.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for stop in (
            self.rabbitmq.stop,
            self.redis.stop,
            lambda: self.postgres.stop("immediate"),
        ):
            try:
                stop()
            except Exception:  # stop what can be stopped
                pass

    def env(self, host: str = "127.0.0.1", ca: Path | None = None) -> dict[str, str]:
        """The app's settings for these servers, TLS verified against `ca` (this CA by default)."""
        ca_file = str(ca or self.ca.cert)
        return {
            "DB_HOST": host,
            "DB_PORT": str(self.postgres.port),
            "DB_USER": "postgres",
            "DB_PASSWORD": PASSWORD,
            "DB_SSL_MODE": "verify-full",
            "DB_SSL_ROOT_CERT": ca_file,
            "REDIS_HOST": host,
            "REDIS_PORT": str(self.redis.port),
            "REDIS_SSL": "true",
            "REDIS_SSL_CA": ca_file,
            "RABBITMQ_HOST": host,
            "RABBITMQ_PORT": str(self.rabbitmq.port),
            "RABBITMQ_SSL": "true",
            "RABBITMQ_SSL_CA": ca_file,
        }
