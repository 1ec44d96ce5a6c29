"""The installed plugin SDK, used the way a third party uses it.

`cmake --install --component sdk` into a temporary prefix, then, against that prefix only:
  - contrib/example-plugin is configured with find_package(mailgate), built with warnings as
    errors, and its own unit tests (the fake host) run;
  - the pure-C plugin is compiled with gcc -std=c99 and `pkg-config --cflags mailgate`, also
    from a copy of the prefix moved elsewhere (the package is relocatable);
  - each .so exports mailgate_plugin_entry (and, built with mailgate_add_plugin, nothing else),
    and calling it through ctypes returns a descriptor for the host's ABI major and NULL for
    another major.
The gateway loading the example from the policy database is tested with the chain.
"""

import ctypes
import os
import re
import shutil
import tempfile
import unittest

from mgtest.sdk import EXAMPLE_DIR, SOURCE_DIR, generator_args, launcher_args, run


def _abi_from_header():
    """MG_ABI_VERSION_MAJOR and _MINOR as sdk/include/mailgate/plugin.h defines them."""
    with open(os.path.join(SOURCE_DIR, "sdk", "include", "mailgate", "plugin.h")) as f:
        text = f.read()
    major = re.search(r"#define MG_ABI_VERSION_MAJOR (\d+)", text)
    minor = re.search(r"#define MG_ABI_VERSION_MINOR (\d+)", text)
    return int(major.group(1)), int(minor.group(1))


ABI_MAJOR, ABI_MINOR = _abi_from_header()
ABI_VERSION = (ABI_MAJOR << 16) | ABI_MINOR
MG_PLUGIN_NONBLOCKING = 0x1


class MgPlugin(ctypes.Structure):
    """mg_plugin from mailgate/plugin.h (x86_64 layout; pinned by tests/unit/sdk)."""
    _fields_ = [("struct_size", ctypes.c_uint32), ("abi_version", ctypes.c_uint32),
                ("name", ctypes.c_char_p), ("version", ctypes.c_char_p),
                ("flags", ctypes.c_uint32)] + [
        (f, ctypes.c_void_p) for f in (
            "create", "destroy", "on_connect", "on_helo", "on_mail", "on_rcpt", "on_data",
            "on_header", "on_eoh", "on_body", "on_eom", "on_reset", "on_close")]


def exported_symbols(so_path):
    out = run(["nm", "-D", "--defined-only", so_path])
    return sorted(line.split()[-1] for line in out.splitlines() if line.strip())


def call_entry(so_path, host_abi_version):
    """Loads the .so (RTLD_LOCAL) and calls its entry point with no host table."""
    lib = ctypes.CDLL(so_path, mode=ctypes.RTLD_LOCAL)
    entry = lib.mailgate_plugin_entry
    entry.restype = ctypes.POINTER(MgPlugin)
    entry.argtypes = [ctypes.c_uint32, ctypes.c_void_p]
    result = entry(host_abi_version, None)
    return result.contents if result else None


class SdkInstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="mailgate-sdk-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        build = os.path.join(cls.tmp, "mailgate-build")
        try:
            # Configuring is enough: the SDK is header-only, nothing needs to be built.
            run(["cmake", "-S", SOURCE_DIR, "-B", build, "-DMAILGATE_BUILD_TESTS=OFF"]
                + generator_args())
            run(["cmake", "--install", build, "--component", "sdk", "--prefix", cls.prefix])
        except BaseException:
            shutil.rmtree(cls.tmp, ignore_errors=True)
            raise

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("MAILGATE_KEEP_TMP"):
            print(f"kept {cls.tmp}")
        else:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_descriptor(self, so_path, name, flags):
        d = call_entry(so_path, ABI_VERSION)
        self.assertIsNotNone(d, f"{so_path}: entry returned NULL for ABI {ABI_MAJOR}.{ABI_MINOR}")
        self.assertEqual(d.struct_size, ctypes.sizeof(MgPlugin))
        self.assertEqual(d.abi_version >> 16, ABI_MAJOR)
        self.assertEqual(d.name.decode(), name)
        self.assertEqual(d.flags, flags)
        self.assertTrue(d.create and d.destroy)
        self.assertIsNotNone(call_entry(so_path, ABI_VERSION + 5), "a later minor is accepted")
        self.assertIsNone(call_entry(so_path, (ABI_MAJOR + 1) << 16), "another major is refused")
        self.assertIsNone(call_entry(so_path, 0), "major 0 is refused")

    def test_installs_headers_cmake_package_and_pkg_config_only(self):
        expected = [
            "include/mailgate/plugin.h", "include/mailgate/plugin.hpp",
            "include/mailgate/fake_host.hpp",
            "share/cmake/mailgate/mailgateConfig.cmake",
            "share/cmake/mailgate/mailgateConfigVersion.cmake",
            "share/cmake/mailgate/mailgateTargets.cmake",
            "share/cmake/mailgate/mailgateHelpers.cmake",
            "share/pkgconfig/mailgate.pc",
        ]
        found = sorted(os.path.relpath(os.path.join(d, f), self.prefix)
                       for d, _, files in os.walk(self.prefix) for f in files)
        self.assertEqual(found, sorted(expected))  # the sdk component: no daemon, no tools

    def test_example_builds_with_find_package_and_its_tests_pass(self):
        build = os.path.join(self.tmp, "example-build")
        run(["cmake", "-S", EXAMPLE_DIR, "-B", build, f"-DCMAKE_PREFIX_PATH={self.prefix}",
             "-DCMAKE_C_FLAGS=-Werror", "-DCMAKE_CXX_FLAGS=-Werror"]
            + generator_args() + launcher_args())
        run(["cmake", "--build", build])
        out = run(["ctest", "--output-on-failure"], cwd=build)
        self.assertIn("100% tests passed", out)

        for name, flags in (("subject_tag", MG_PLUGIN_NONBLOCKING), ("hello", MG_PLUGIN_NONBLOCKING)):
            so = os.path.join(build, f"{name}.so")  # MODULE, no "lib" prefix
            self.assertEqual(exported_symbols(so), ["mailgate_plugin_entry"], so)
            self.check_descriptor(so, name, flags)

    def test_find_package_refuses_another_major_and_reports_the_abi(self):
        project = os.path.join(self.tmp, "version-probe")
        os.makedirs(project, exist_ok=True)
        with open(os.path.join(project, "CMakeLists.txt"), "w", encoding="utf-8") as f:
            f.write("cmake_minimum_required(VERSION 3.16)\nproject(probe LANGUAGES C)\n"
                    "find_package(mailgate ${WANT} REQUIRED)\n"
                    'message(STATUS "abi=${mailgate_ABI_VERSION_MAJOR}.'
                    '${mailgate_ABI_VERSION_MINOR} version=${mailgate_VERSION}")\n')
        out = run(["cmake", "-S", project, "-B", os.path.join(project, "b1"), "-DWANT=0.1",
                   f"-DCMAKE_PREFIX_PATH={self.prefix}"])
        self.assertIn(f"abi={ABI_MAJOR}.{ABI_MINOR} version=0.1.0", out)
        with self.assertRaises(AssertionError) as failure:
            run(["cmake", "-S", project, "-B", os.path.join(project, "b2"), "-DWANT=1.0",
                 f"-DCMAKE_PREFIX_PATH={self.prefix}"])
        self.assertIn("mailgateConfig.cmake, version: 0.1.0", str(failure.exception))

    def test_pure_c_plugin_builds_with_pkg_config_even_after_the_prefix_moved(self):
        moved = os.path.join(self.tmp, "moved-prefix")
        shutil.copytree(self.prefix, moved)
        for prefix in (self.prefix, moved):
            env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(prefix, "share", "pkgconfig"))
            cflags = run(["pkg-config", "--cflags", "mailgate"], env=env).split()
            self.assertEqual(run(["pkg-config", "--modversion", "mailgate"], env=env).strip(),
                             "0.1.0")
            self.assertTrue(any(os.path.realpath(flag[2:]) == os.path.join(
                os.path.realpath(prefix), "include") for flag in cflags if flag.startswith("-I")),
                cflags)
            so = os.path.join(self.tmp, f"hello-{os.path.basename(prefix)}.so")
            run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Wpedantic", "-Werror", "-shared",
                 "-fPIC", "-fvisibility=hidden", "-Wl,--no-undefined", *cflags, "-o", so,
                 os.path.join(EXAMPLE_DIR, "c", "hello.c")])
            self.assertEqual(exported_symbols(so), ["mailgate_plugin_entry"])
            self.check_descriptor(so, "hello", MG_PLUGIN_NONBLOCKING)


if __name__ == "__main__":
    unittest.main()
