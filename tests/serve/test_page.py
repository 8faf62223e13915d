"""The search page in a real headless browser (Debian's chromium): its script queries the service
and renders ranked results with scores, an audio player, a "more like this" button and a
spectrogram per result, beside a file picker for a query by sound."""

import shutil
import subprocess
from html.parser import HTMLParser
from urllib.parse import quote

import pytest
import requests


class Results(HTMLParser):
    """The rendered page's result items, players and status line."""

    def __init__(self):
        super().__init__()
        self.items, self.players, self.state, self.status, self._in_status = [], [], None, "", False
        self.like_buttons, self.pictures, self.pickers = 0, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "li" and attrs.get("class") == "result":
            self.items.append(attrs["data-clip-id"])
        elif tag == "audio":
            self.players.append(attrs.get("src"))
        elif tag == "button" and attrs.get("class") == "like":
            self.like_buttons += 1
        elif tag == "img" and attrs.get("class") == "spectrogram":
            self.pictures.append(attrs.get("src"))
        elif tag == "input" and attrs.get("type") == "file":
            self.pickers.append(attrs.get("accept"))
        elif tag == "ol" and attrs.get("id") == "results":
            self.state = attrs.get("data-state")
        self._in_status = tag == "p" and attrs.get("id") == "status"

    def handle_data(self, data):
        if self._in_status:
            self.status += data


def rendered(url: str, tmp_path) -> Results:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("chromium is missing: apt-get install -y chromium (.ci/run does it)")
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=20000",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    page = Results()
    page.feed(dom)
    return page


def test_page_shows_ranked_results_with_scores_and_players(service, indexed, tmp_path):
    page = rendered(f"{service}/?q={quote('a dog barks')}&k=2", tmp_path)
    assert page.state == "done", page.status
    dogs = {c for c, clip in indexed.items() if clip["label"] == "dog"}
    expected = [
        r["clip_id"]
        for r in requests.get(
            f"{service}/search", params={"q": "a dog barks", "k": 2}, timeout=60
        ).json()["results"]
    ]
    assert page.items == expected and set(page.items) == dogs
    assert page.players == [f"audio/{c}" for c in expected]  # relative to the page
    assert page.status.startswith("2 results in")
    for src in page.players:  # what each player fetches is the clip itself
        assert requests.get(f"{service}/{src}", timeout=30).headers["content-type"] == "audio/flac"


def test_page_shows_the_services_message_for_a_bad_query(service, tmp_path):
    page = rendered(f"{service}/?q={quote('   ')}", tmp_path)
    assert page.state == "error" and page.items == []
    assert page.status.startswith("422: q: the query needs some text")


def test_more_like_this_page_shows_buttons_picker_and_a_spectrogram_per_result(
    service, indexed, tmp_path
):
    clip_id = sorted(indexed)[1]
    page = rendered(f"{service}/?like={quote(clip_id)}&k=4", tmp_path)
    assert page.state == "done", page.status
    expected = [
        r["clip_id"]
        for r in requests.get(
            f"{service}/search", params={"like": clip_id, "k": 4}, timeout=60
        ).json()["results"]
    ]
    assert page.items == expected and clip_id not in page.items
    assert page.status.startswith(f"4 results like clip {clip_id} in")
    assert page.like_buttons == 4 and page.pickers == ["audio/*"]
    assert page.pictures == [f"spectrogram/{c}" for c in expected]
    for src in page.pictures:
        assert requests.get(f"{service}/{src}", timeout=60).headers["content-type"] == "image/png"
