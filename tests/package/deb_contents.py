"""The Debian package: `cpack -G DEB` over the existing build makes a .deb that holds the
daemon, mailgatectl, every built-in plugin the build made, the SDK (headers, CMake package,
pkg-config file), both systemd units (pointing at the packaged daemon and flagfiles), the
flagfiles as conffiles, the deployment docs and the Postfix/Sendmail snippets; its Depends
name libmilter; the packaged daemon runs (--version) from the extracted tree.

Usage (ctest runs it): deb_contents.py --cpack CPACK --build-dir BUILD --prefix PREFIX
        --plugin-dir PLUGIN_INSTALL_DIR --sysconf-dir SYSCONF_DIR
The package is made in a temporary directory (cpack -B), never in the build directory.
"""

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

ARGS = None


def run(*cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p.stdout


class DebPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mailgate-deb-")
        run(ARGS.cpack, "-G", "DEB", "-B", cls.tmp, "--config",
            os.path.join(ARGS.build_dir, "CPackConfig.cmake"))
        debs = glob.glob(os.path.join(cls.tmp, "*.deb"))
        if len(debs) != 1:
            raise AssertionError(f"expected one .deb in {cls.tmp}, found {debs}")
        cls.deb = debs[0]
        cls.files = set()
        for line in run("dpkg-deb", "-c", cls.deb).splitlines():
            path = line.split(None, 5)[5].split(" -> ")[0]
            cls.files.add(path[1:] if path.startswith("./") else path)
        cls.root = os.path.join(cls.tmp, "root")
        run("dpkg-deb", "-x", cls.deb, cls.root)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def assert_in_package(self, path):
        self.assertIn(path, self.files, f"{path} not in {self.deb}")

    def test_daemon_ctl_sdk_docs_and_snippets(self):
        p = ARGS.prefix
        for path in (f"{p}/sbin/mailgate", f"{p}/sbin/mailgatectl",
                     f"{p}/include/mailgate/plugin.h", f"{p}/include/mailgate/plugin.hpp",
                     f"{p}/include/mailgate/fake_host.hpp",
                     f"{p}/share/cmake/mailgate/mailgateConfig.cmake",
                     f"{p}/share/pkgconfig/mailgate.pc",
                     f"{p}/share/doc/mailgate/deployment.md",
                     f"{p}/share/doc/mailgate/examples/postfix/main.cf.milter",
                     f"{p}/share/doc/mailgate/examples/postfix/main.cf.proxy",
                     f"{p}/share/doc/mailgate/examples/postfix/master.cf.proxy",
                     f"{p}/share/doc/mailgate/examples/sendmail/mailgate.mc"):
            with self.subTest(path=path):
                self.assert_in_package(path)

    def test_every_built_plugin(self):
        built = sorted(os.path.basename(f)
                       for f in glob.glob(os.path.join(ARGS.build_dir, "plugins", "*.so")))
        self.assertIn("access.so", built)
        for name in built:
            with self.subTest(plugin=name):
                self.assert_in_package(f"{ARGS.plugin_dir}/{name}")

    def test_units_and_conffiles(self):
        sysconf = ARGS.sysconf_dir
        for unit, flags in (("mailgate.service", "mailgate.flags"),
                            ("mailgate-milter.service", "milter.flags")):
            with self.subTest(unit=unit):
                path = f"{ARGS.prefix}/lib/systemd/system/{unit}"
                self.assert_in_package(path)
                self.assert_in_package(f"{sysconf}/{flags}")
                with open(os.path.join(self.root, path.lstrip("/"))) as f:
                    text = f.read()
                self.assertIn(f"ExecStart={ARGS.prefix}/sbin/mailgate ", text)
                self.assertIn(f"--flagfile={sysconf}/{flags}", text)
        self.assertIn("--mode=milter", open(os.path.join(
            self.root, f"{ARGS.prefix}/lib/systemd/system/mailgate-milter.service".lstrip("/"))).read())
        ctl = os.path.join(self.tmp, "control")
        run("dpkg-deb", "-e", self.deb, ctl)
        with open(os.path.join(ctl, "conffiles")) as f:
            self.assertEqual(f.read().split(), [f"{sysconf}/mailgate.flags", f"{sysconf}/milter.flags"])

    def test_depends_and_packaged_daemon_runs(self):
        depends = run("dpkg-deb", "-f", self.deb, "Depends")
        self.assertIn("libmilter", depends)
        self.assertIn("libunbound", depends)
        out = run(os.path.join(self.root, ARGS.prefix.lstrip("/"), "sbin", "mailgate"), "--version")
        self.assertIn("0.1.0", out)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    for a in ("--cpack", "--build-dir", "--prefix", "--plugin-dir", "--sysconf-dir"):
        ap.add_argument(a, required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0], "-v"] + rest)
