"""The citation metadata agrees everywhere (CITATION.cff, .zenodo.json, the package, _config.yml),
the Binder environment is described by the repository's own files, and the launch buttons of a
chapter open a notebook the repository holds (book/_ext/record_links.py)."""
from __future__ import annotations

import importlib.util
import json
import os
import tomllib

import yaml

import adv2lib
from adv2lib import paths

ROOT = paths.root()


def _cff() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def _zenodo() -> dict:
    return json.loads((ROOT / ".zenodo.json").read_text())


def test_version_release_date_and_repository_agree_everywhere():
    cff, zenodo = _cff(), _zenodo()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert str(cff["version"]) == zenodo["version"] == pyproject["project"]["version"] == adv2lib.__version__
    assert str(cff["date-released"]) == zenodo["publication_date"]
    assert cff["repository-code"] == repo
    assert {"identifier": repo, "relation": "isSupplementTo", "scheme": "url"} in zenodo["related_identifiers"]
    assert cff["title"] == zenodo["title"] and cff["license"] == zenodo["license"]
    assert [a["name"] for a in cff["authors"]] == [c["name"] for c in zenodo["creators"]]


def test_the_paper_is_the_preferred_citation_and_a_related_identifier():
    paper = _cff()["preferred-citation"]
    assert paper["title"] == "Interpretable Deep Learning under Fire" and paper["year"] == 2020
    [arxiv] = [i["value"] for i in paper["identifiers"] if i["value"].startswith("arXiv:")]
    related = {(r["identifier"], r["relation"]) for r in _zenodo()["related_identifiers"]}
    assert (arxiv, "isSupplementTo") in related
    bib = (ROOT / "book" / "references.bib").read_text()
    assert arxiv in bib


def test_binder_builds_from_the_repository_files():
    binder = ROOT / "binder"
    assert (binder / "requirements.txt").read_text().splitlines()[-1] == "-r ../requirements.txt"
    apt = (binder / "apt.txt").read_text().split()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "dataset-fashion-mnist" in apt and all(package in ci for package in apt)
    post = binder / "postBuild"
    assert os.access(post, os.X_OK) and "pip install --no-deps -e ." in post.read_text()


def _record_links():
    spec = importlib.util.spec_from_file_location("record_links", ROOT / "book" / "_ext" / "record_links.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_launch_buttons_are_pointed_at_the_record_or_the_source(tmp_path):
    links = _record_links()
    (tmp_path / "record" / "embedded-full" / "executed").mkdir(parents=True)
    (tmp_path / "record" / "embedded-full" / "executed" / "main.ipynb").write_text("{}")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "main.ipynb").write_text("{}")
    assert links.launch_target(tmp_path, "main", "embedded") == "record/embedded-full/executed/main.ipynb"
    assert links.launch_target(tmp_path, "main", "imagenet") == "notebooks/main.ipynb"
    assert links.launch_target(tmp_path, "other", "embedded") is None

    class App:
        srcdir = str(ROOT)

    url = "https://mybinder.org/v2/gh/o/r/main?urlpath=tree/book/executed/intro.ipynb"
    download = "../../_sources/book/executed/intro.ipynb"
    context = {"header_buttons": [{"type": "group", "buttons": [{"url": url}]},
                                  {"type": "group", "buttons": [{"url": download}]}]}
    links.point_at_record(App, "book/executed/intro", "page.html", context, None)
    assert context["header_buttons"][0]["buttons"][0]["url"].endswith("tree/record/embedded-full/executed/intro.ipynb")
    assert context["header_buttons"][1]["buttons"][0]["url"] == download      # the site's own copy
    links.point_at_record(App, "book/method", "page.html", context, None)     # a text page: untouched
