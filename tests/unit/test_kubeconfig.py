"""aliasip_api.kubeconfig: a kubeconfig's current context, and the in-cluster service account.

The fields as client-go reads them:
https://kubernetes.io/docs/reference/config-api/kubeconfig.v1/ (cluster: server,
certificate-authority[-data], insecure-skip-tls-verify, tls-server-name; user: token,
tokenFile, client-certificate[-data], client-key[-data], username/password), relative paths
relative to the file; in-cluster: KUBERNETES_SERVICE_HOST/PORT and the mounted token and
ca.crt, the token read again every minute.
"""

from __future__ import annotations

import base64
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from aliasip_api.kubeconfig import (
    Configuration,
    KubeconfigError,
    TokenFile,
    load_incluster,
    load_kubeconfig,
)
from aliasip_api.rest import load_configuration
from tests.unit.tls import Certs, common_name, make_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


def kubeconfig(
    tmp_path: Path,
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    **top: Any,
) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster or {"server": "http://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
        **top,
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return path


def private(path: str | None) -> bytes:
    """The content of a file written for a ``*-data`` field, checked to be ours only."""
    assert path is not None
    file = Path(path)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
    return file.read_bytes()


# --------------------------------------------------------------------------- kubeconfig


def test_the_lab_kubeconfig_is_a_plain_server_without_credentials(tmp_path: Path) -> None:
    cfg = load_configuration(str(kubeconfig(tmp_path)))
    assert cfg.host == "http://127.0.0.1:6443"
    assert cfg.auth_settings() == {}
    assert cfg.ssl_context is None
    assert (cfg.ssl_ca_cert, cfg.cert_file, cfg.key_file, cfg.verify_ssl) == (
        None,
        None,
        None,
        True,
    )


def test_a_token_is_a_bearer_authorization_header(tmp_path: Path) -> None:
    cfg = load_kubeconfig(kubeconfig(tmp_path, user={"token": "s3cret"}))
    assert cfg.auth_settings() == {
        "BearerToken": {
            "type": "api_key",
            "in": "header",
            "key": "authorization",
            "value": "Bearer s3cret",
        }
    }
    assert "s3cret" not in repr(cfg)


def test_a_token_file_is_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    cfg = load_kubeconfig(kubeconfig(tmp_path, user={"tokenFile": "token"}))
    assert cfg.auth_settings()["BearerToken"]["value"] == "Bearer from-file"


def test_a_token_file_is_read_again_each_period_and_kept_when_unreadable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "token"
    path.write_text("one")
    now = [100.0]
    token = TokenFile(path, period_s=60, clock=lambda: now[0])
    path.write_text("two")
    now[0] += 59
    assert token.token() == "one"
    now[0] += 1
    assert token.token() == "two"
    path.unlink()
    now[0] += 60
    assert token.token() == "two"  # kept: the kubelet may be replacing the file
    path.write_text("three")
    now[0] += 60
    assert token.token() == "three"


def test_an_empty_or_missing_token_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(KubeconfigError, match="empty"):
        load_kubeconfig(kubeconfig(tmp_path, user={"tokenFile": "empty"}))
    with pytest.raises(KubeconfigError, match="absent"):
        load_kubeconfig(kubeconfig(tmp_path, user={"tokenFile": "absent"}))


def test_basic_auth(tmp_path: Path) -> None:
    cfg = load_kubeconfig(kubeconfig(tmp_path, user={"username": "ann", "password": "pw"}))
    value = cfg.auth_settings()["BasicAuth"]["value"]
    assert value == "Basic " + base64.b64encode(b"ann:pw").decode()


def test_ca_data_is_written_to_a_private_file_and_trusted(tmp_path: Path, certs: Certs) -> None:
    cluster = {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": certs.b64("ca.crt"),
    }
    cfg = load_kubeconfig(kubeconfig(tmp_path, cluster=cluster))
    assert private(cfg.ssl_ca_cert) == certs.path("ca.crt").read_bytes()
    assert cfg.verify_ssl
    assert cfg.ssl_context is not None
    assert cfg.ssl_context.verify_mode == ssl.CERT_REQUIRED and cfg.ssl_context.check_hostname
    assert "test-ca" in [common_name(ca) for ca in cfg.ssl_context.get_ca_certs()]


def test_a_ca_file_is_relative_to_the_kubeconfig(tmp_path: Path, certs: Certs) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(certs.path("ca.crt").read_bytes())
    cluster = {"server": "https://127.0.0.1:6443", "certificate-authority": "pki/ca.crt"}
    cfg = load_kubeconfig(kubeconfig(tmp_path, cluster=cluster))
    assert cfg.ssl_ca_cert == str(tmp_path / "pki" / "ca.crt")


def test_client_certificate_data_is_written_to_private_files(tmp_path: Path, certs: Certs) -> None:
    user = {
        "client-certificate-data": certs.b64("client.crt"),
        "client-key-data": certs.b64("client.key"),
    }
    cluster = {
        "server": "https://127.0.0.1:6443",
        "certificate-authority-data": certs.b64("ca.crt"),
    }
    cfg = load_kubeconfig(kubeconfig(tmp_path, cluster=cluster, user=user))
    assert private(cfg.cert_file) == certs.path("client.crt").read_bytes()
    assert private(cfg.key_file) == certs.path("client.key").read_bytes()
    assert cfg.auth_settings() == {}


def test_client_certificate_files(tmp_path: Path, certs: Certs) -> None:
    user = {
        "client-certificate": str(certs.path("client.crt")),
        "client-key": str(certs.path("client.key")),
    }
    cluster = {"server": "https://127.0.0.1:6443"}
    cfg = load_kubeconfig(kubeconfig(tmp_path, cluster=cluster, user=user))
    assert (cfg.cert_file, cfg.key_file) == (
        str(certs.path("client.crt")),
        str(certs.path("client.key")),
    )


def test_a_certificate_without_its_key_is_refused(tmp_path: Path, certs: Certs) -> None:
    user = {"client-certificate-data": certs.b64("client.crt")}
    with pytest.raises(KubeconfigError, match=r"user 'u': client-key .* is missing"):
        load_kubeconfig(kubeconfig(tmp_path, user=user))


def test_a_key_that_does_not_match_is_refused_at_load(tmp_path: Path, certs: Certs) -> None:
    user = {
        "client-certificate-data": certs.b64("client.crt"),
        "client-key-data": certs.b64("server.key"),
    }
    cluster = {"server": "https://127.0.0.1:6443"}
    with pytest.raises(KubeconfigError, match="cannot load the client certificate"):
        load_kubeconfig(kubeconfig(tmp_path, cluster=cluster, user=user))


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    cluster = {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}
    cfg = load_kubeconfig(kubeconfig(tmp_path, cluster=cluster))
    assert not cfg.verify_ssl
    assert cfg.ssl_context is not None
    assert cfg.ssl_context.verify_mode == ssl.CERT_NONE and not cfg.ssl_context.check_hostname


def test_tls_server_name(tmp_path: Path) -> None:
    cluster = {"server": "https://198.18.0.1:6443", "tls-server-name": "kubernetes.default"}
    assert load_kubeconfig(kubeconfig(tmp_path, cluster=cluster)).tls_server_name == (
        "kubernetes.default"
    )


def test_a_named_context_instead_of_the_current_one(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path)
    document = yaml.safe_load(path.read_text())
    document["clusters"].append({"name": "c2", "cluster": {"server": "http://other:1"}})
    document["contexts"].append({"name": "ctx2", "context": {"cluster": "c2", "user": "u"}})
    path.write_text(yaml.safe_dump(document))
    assert load_kubeconfig(path).host == "http://127.0.0.1:6443"
    assert load_kubeconfig(path, context="ctx2").host == "http://other:1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"current-context": ""}, r"kubeconfig .*: no current-context is set"),
        ({"current-context": "nope"}, r"context 'nope' not found \(known: 'ctx'\)"),
        (
            {"contexts": [{"name": "ctx", "context": {"cluster": "gone", "user": "u"}}]},
            r"cluster 'gone' not found \(known: 'c'\)",
        ),
        (
            {"contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "gone"}}]},
            r"user 'gone' not found",
        ),
        ({"clusters": [{"name": "c", "cluster": {}}]}, r"cluster 'c' has no server"),
        (
            {"users": [{"name": "u", "user": {"exec": {"command": "aws"}}}]},
            r"user 'u': exec is not supported",
        ),
        (
            {"users": [{"name": "u", "user": {"token": "t", "username": "a", "password": "b"}}]},
            r"user 'u': a token and a username/password are both set",
        ),
        (
            {
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": "https://x", "certificate-authority-data": "%%%"},
                    }
                ]
            },
            r"cluster 'c': certificate-authority-data is not valid base64",
        ),
        (
            {
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": "https://x", "certificate-authority": "no.crt"},
                    }
                ]
            },
            r"cannot load the CA certificate \(.*no\.crt\)",
        ),
    ],
)
def test_errors_name_the_file_and_the_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = kubeconfig(tmp_path)
    document = yaml.safe_load(path.read_text())
    document.update(change)
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(KubeconfigError, match=message) as caught:
        load_kubeconfig(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read kubeconfig"), ("", "empty or not a mapping"), ("a: [", "not valid YAML")],
)
def test_a_missing_or_broken_file(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "kubeconfig"
    if content is not None:
        path.write_text(content)
    with pytest.raises(KubeconfigError, match=message) as caught:
        load_kubeconfig(path)
    assert str(path) in str(caught.value)


# --------------------------------------------------------------------------- in-cluster


def service_account(directory: Path, certs: Certs, token: str = "sa-token\n") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "token").write_text(token)
    (directory / "ca.crt").write_bytes(certs.path("ca.crt").read_bytes())
    return directory


ENV = {"KUBERNETES_SERVICE_HOST": "198.18.96.1", "KUBERNETES_SERVICE_PORT": "443"}


def test_in_cluster(tmp_path: Path, certs: Certs) -> None:
    directory = service_account(tmp_path / "sa", certs)
    cfg = load_incluster(ENV, directory)
    assert cfg.host == "https://198.18.96.1:443"
    assert cfg.ssl_ca_cert == str(directory / "ca.crt")
    assert cfg.verify_ssl and cfg.cert_file is None and cfg.key_file is None
    assert cfg.auth_settings()["BearerToken"]["value"] == "Bearer sa-token"
    assert cfg.token_file is not None and cfg.token_file.path == directory / "token"


def test_in_cluster_ipv6(tmp_path: Path, certs: Certs) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}
    assert load_incluster(env, service_account(tmp_path, certs)).host == "https://[fd00::1]:443"


def test_in_cluster_errors(tmp_path: Path, certs: Certs) -> None:
    with pytest.raises(KubeconfigError, match="KUBERNETES_SERVICE_HOST"):
        load_incluster({}, tmp_path)
    with pytest.raises(KubeconfigError, match=r"in-cluster: .*ca\.crt does not exist"):
        load_incluster(ENV, tmp_path)
    directory = service_account(tmp_path / "sa", certs, token="")
    with pytest.raises(KubeconfigError, match=r"in-cluster: token file .*token is empty"):
        load_incluster(ENV, directory)


def test_a_configuration_needs_both_certificate_and_key() -> None:
    with pytest.raises(KubeconfigError, match="both"):
        Configuration("http://x", cert_file="/c")
