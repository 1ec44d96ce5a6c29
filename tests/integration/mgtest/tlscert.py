"""Test certificates: self-signed, made with the openssl command line in the test's temp dir.

    cert, key = tlscert.self_signed(directory, "gateway.mailgate.test")
"""

import os
import subprocess


def self_signed(directory, common_name, name="server", days=2, key_type="rsa:2048"):
    """Writes NAME.crt and NAME.key (PEM, unencrypted) for CN=common_name; returns the paths."""
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, f"{name}.crt")
    key = os.path.join(directory, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", key_type, "-nodes", "-keyout", key,
                    "-out", cert, "-days", str(days), "-subj", f"/CN={common_name}",
                    "-addext", f"subjectAltName=DNS:{common_name}"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def subject_cn(pem_bytes_or_der):
    """The CN of a certificate given as DER bytes (ssl getpeercert(binary_form=True))."""
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject"],
                         input=pem_bytes_or_der, check=True, capture_output=True, timeout=30)
    text = out.stdout.decode()
    return text.split("CN", 1)[1].lstrip(" =").strip() if "CN" in text else ""
