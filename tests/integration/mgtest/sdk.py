"""Building plugins the way a third party does: against the SDK installed into a prefix.

    install_sdk(prefix, work_dir)            cmake configure (no tests) + install --component sdk
    build_example(prefix, build_dir)         contrib/example-plugin with find_package(mailgate)
    compile_c_plugin(source, out, include)   gcc -std=c99 -shared ..., as plugin-guide.md §9

The same steps as test_sdk_install.py (which checks the installed tree itself); gateway tests
use these to get plugin .so files built from an installed SDK only.
"""

import os
import shutil
import subprocess

SOURCE_DIR = os.environ.get("MAILGATE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", "..", ".."))
EXAMPLE_DIR = os.path.join(SOURCE_DIR, "contrib", "example-plugin")


def run(cmd, cwd=None, env=None, timeout=600):
    """Runs cmd; on failure raises AssertionError carrying the command and its output."""
    proc = subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n"
                             f"{proc.stdout[-6000:]}")
    return proc.stdout


def generator_args():
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def launcher_args():
    if not shutil.which("ccache"):
        return []
    return ["-DCMAKE_C_COMPILER_LAUNCHER=ccache", "-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"]


def install_sdk(prefix, work_dir):
    """Installs the SDK component into `prefix` (configuring is enough: it is header-only)."""
    build = os.path.join(work_dir, "mailgate-sdk-build")
    run(["cmake", "-S", SOURCE_DIR, "-B", build, "-DMAILGATE_BUILD_TESTS=OFF"]
        + generator_args())
    run(["cmake", "--install", build, "--component", "sdk", "--prefix", prefix])
    return prefix


def build_example(prefix, build_dir, targets=("subject_tag", "hello")):
    """Builds the example plugins against the SDK in `prefix`; returns {name: absolute .so}."""
    run(["cmake", "-S", EXAMPLE_DIR, "-B", build_dir, f"-DCMAKE_PREFIX_PATH={prefix}",
         "-DCMAKE_BUILD_TYPE=RelWithDebInfo"] + generator_args() + launcher_args())
    run(["cmake", "--build", build_dir, "--target", *targets])
    return {name: os.path.join(os.path.abspath(build_dir), f"{name}.so") for name in targets}


def compile_c_plugin(source, out, include_dir):
    """A pure-C plugin, compiled as plugin-guide.md shows for a plain Makefile."""
    run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-shared", "-fPIC",
         "-fvisibility=hidden", "-Wl,--no-undefined", f"-I{include_dir}", "-o", out, source,
         "-lpthread"])
    return os.path.abspath(out)
