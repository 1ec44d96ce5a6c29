"""The status page on --metrics_listen (gateway/obs/www/, compiled into the binary), loaded in
Debian's headless Chromium after real traffic through the gateway to Postfix: the page loads
its script and styles from the gateway alone (no other host is reachable: Chromium runs with
every network feature off and the page names no other origin), polls /api/status, and its DOM
shows non-zero figures, a row per plugin and the recent refusals. A PNG screenshot is written
to $MAILGATE_TEST_OUTPUT_DIR (or a temp dir) and checked to be a real, non-trivial image."""

import json
import os
import re
import shutil
import struct
import subprocess
import unittest
import zlib

from mgtest import base, util
from mgtest.obsclient import (BLOCKED, GTUBE, http_request, metrics_address, policy_with_plugins,
                              send)


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise FileNotFoundError("chromium not installed (contrib/install-deps.sh installs it)")


def run_chromium(args, profile, timeout=90):
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--disable-default-apps", "--metrics-recording-only", "--mute-audio",
            f"--user-data-dir={profile}", "--window-size=1280,1500",
            "--virtual-time-budget=8000", *args]
    return subprocess.run(argv, capture_output=True, timeout=timeout, check=False)


def png_info(path):
    """(width, height, distinct colours in a sample of rows) of an 8-bit RGB(A) PNG."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, colour_type = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8, depth
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    bpp = {2: 3, 6: 4}[colour_type]
    stride = width * bpp + 1
    colours = set()
    # Unfiltering is not needed to count variety roughly: filtered bytes of a flat image are
    # near-constant too. Sample every 50th row.
    for y in range(0, height, 50):
        row = raw[y * stride + 1:(y + 1) * stride]
        for x in range(0, len(row) - bpp, bpp * 7):
            colours.add(row[x:x + bpp])
    return width, height, len(colours)


class StatusPageTest(base.PostfixCase):

    def test_page_shows_live_traffic_in_headless_chromium(self):
        ctl = policy_with_plugins(self)
        gw = self.start_gateway(flags=[f"--policy_db={ctl.db}", "--metrics_listen=127.0.0.1:0"])
        gw.wait_for_log(r"plugin chains ready \(\d+ profiles, 2 plugin instances\)")
        addr = metrics_address(gw)
        for i in range(4):
            self.assertEqual(send(self, gw, f"page-ok-{i}")[1].code, 250)
        self.assertEqual(send(self, gw, "page-blocked", rcpts=(BLOCKED,))[0][0].code, 554)
        self.assertEqual(send(self, gw, "page-gtube", body=f"{GTUBE}\r\n")[1].code, 550)

        # The JSON the page polls.
        status, headers, body = http_request(addr, "/api/status")
        self.assertEqual(status, 200)
        doc = json.loads(body)
        self.assertEqual(doc["totals"]["transactions_by_outcome"]["accepted"], 4)
        self.assertEqual({p["name"] for p in doc["plugins"]}, {"access", "spamscore"})
        self.assertEqual(len(doc["refusals"]), 2)
        # The page and its assets come from the binary, and name no other origin.
        page = http_request(addr, "/")[2]
        for asset in ("/status.js", "/status.css"):
            self.assertIn(f'"{asset}"', page)
            self.assertEqual(http_request(addr, asset)[0], 200)
        self.assertIsNone(re.search(r"(src|href)=\"(https?:)?//", page))

        profile = util.make_tempdir("mailgate-chromium-")
        self.addCleanup(util.remove_tree, profile)
        url = f"http://{addr[0]}:{addr[1]}/"
        p = run_chromium(["--dump-dom", url], profile)
        dom = p.stdout.decode("utf-8", "replace")
        self.assertIn('data-loaded="true"', dom, p.stderr.decode(errors="replace")[-3000:])

        def figure(element_id):
            m = re.search(rf'id="{element_id}">([^<]*)<', dom)
            self.assertIsNotNone(m, element_id)
            return int(m.group(1).replace(",", ""))

        self.assertEqual(figure("accepted"), 4)
        self.assertGreaterEqual(figure("transactions"), 5)
        self.assertGreaterEqual(figure("connections"), 6)
        self.assertGreaterEqual(figure("refused"), 2)
        plugins = re.search(r'<table id="plugins">.*?</table>', dom, re.S).group(0)
        self.assertIn("<td>access</td>", plugins)
        self.assertIn("<td>spamscore</td>", plugins)
        refusals = re.search(r'<table id="refusals">.*?</table>', dom, re.S).group(0)
        self.assertIn("blocked by the obs test", refusals)
        self.assertIn("GTUBE", refusals)

        out_dir = os.environ.get("MAILGATE_TEST_OUTPUT_DIR") or util.make_tempdir("mailgate-out-")
        os.makedirs(out_dir, exist_ok=True)
        shot = os.path.join(out_dir, "status_page.png")
        if os.path.exists(shot):
            os.unlink(shot)
        p = run_chromium([f"--screenshot={shot}", url], profile)
        self.assertTrue(os.path.exists(shot), p.stderr.decode(errors="replace")[-3000:])
        width, height, colours = png_info(shot)
        self.assertEqual((width, height), (1280, 1500))
        self.assertGreater(os.path.getsize(shot), 20000)
        self.assertGreater(colours, 8)  # text, tiles, chart lines: not a blank page
        print(f"\nstatus page screenshot: {shot}")


if __name__ == "__main__":
    unittest.main()
