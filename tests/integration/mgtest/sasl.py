"""Cyrus SASL for the test Postfix: a sasldb with the test users, an smtpd.conf naming it, and
the main.cf settings that turn AUTH on in Postfix's smtpd (Debian: sasl2-bin for
saslpasswd2, libsasl2-modules for PLAIN and LOGIN).

    pf = PostfixInstance(directory, ...)
    pf.extra_main.update(sasl.postfix_settings(sasl_dir, "example.test", {"alice": "secret"},
                                               pf.config_dir))

Users log in with their bare name ("alice"); Postfix passes smtpd_sasl_local_domain as the
realm, which is the realm saslpasswd2 filed them under. Postfix runs unchrooted here (see
postfix.py), so the sasldb path is used as is; the file belongs to the postfix user.
"""

import os
import pwd
import shutil
import subprocess

SASLPASSWD2 = "/usr/sbin/saslpasswd2"


def available():
    return os.access(SASLPASSWD2, os.X_OK) and os.path.isdir("/usr/lib/x86_64-linux-gnu/sasl2")


def postfix_settings(directory, realm, users, postfix_config_dir):
    """Writes DIR/sasldb2 and the Cyrus application file smtpd.conf; returns the main.cf
    settings for Postfix. Debian's Postfix reads smtpd.conf from $config_directory/sasl/
    (cyrus_sasl_config_path is set too, for other builds), so it is written there as well."""
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o755)
    db = os.path.join(directory, "sasldb2")
    for user, password in users.items():
        subprocess.run([SASLPASSWD2, "-f", db, "-c", "-p", "-u", realm, user],
                       input=password.encode(), check=True, capture_output=True, timeout=30)
    postfix = pwd.getpwnam("postfix")
    shutil.chown(db, postfix.pw_uid, postfix.pw_gid)
    os.chmod(db, 0o600)
    conf = ("pwcheck_method: auxprop\n"
            "auxprop_plugin: sasldb\n"
            "mech_list: PLAIN LOGIN\n"
            f"sasldb_path: {db}\n")
    for where in (directory, os.path.join(postfix_config_dir, "sasl")):
        os.makedirs(where, exist_ok=True)
        os.chmod(where, 0o755)
        with open(os.path.join(where, "smtpd.conf"), "w") as f:
            f.write(conf)
    return {
        "smtpd_sasl_auth_enable": "yes",
        "smtpd_sasl_type": "cyrus",
        "smtpd_sasl_path": "smtpd",
        "cyrus_sasl_config_path": directory,
        "smtpd_sasl_local_domain": realm,
        "smtpd_sasl_security_options": "noanonymous",
        "smtpd_tls_auth_only": "no",
    }
