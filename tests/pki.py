"""A throwaway PKI made with the openssl CLI: a CA, a serving certificate for 127.0.0.1 and client
certificates, as cert-manager would issue them for the extender run apart (tests only)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory, timeout=60)


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


@dataclass(frozen=True)
class CA:
    directory: Path
    pair: Pair

    @classmethod
    def create(cls, directory: Path, name: str) -> CA:
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{name}.crt", directory / f"{name}.key"
        _openssl(directory, "req", "-x509", *_EC, "-days", "1", "-subj", f"/CN={name}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                 "-keyout", key.name, "-out", cert.name)  # fmt: skip
        return cls(directory, Pair(cert, key))

    def issue(self, name: str, usage: str, san: str = "") -> Pair:
        """A leaf signed by this CA; `usage` serverAuth or clientAuth, `san` e.g. IP:127.0.0.1."""
        cert, key, csr = (self.directory / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
        ext = self.directory / f"{name}.ext"
        lines = ["basicConstraints=CA:FALSE", f"extendedKeyUsage={usage}"]
        if san:
            lines.append(f"subjectAltName={san}")
        ext.write_text("\n".join(lines) + "\n")
        _openssl(self.directory, "req", "-new", *_EC, "-subj", f"/CN={name}", "-keyout", key.name,
                 "-out", csr.name)  # fmt: skip
        _openssl(self.directory, "x509", "-req", "-in", csr.name, "-CA", self.pair.cert.name,
                 "-CAkey", self.pair.key.name, "-CAcreateserial", "-days", "1", "-extfile", ext.name,
                 "-out", cert.name)  # fmt: skip
        return Pair(cert, key)
