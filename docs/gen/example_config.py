"""The example config page: the file `convsync demo` dry-runs (packaged with convsync,
``convsync/demo/example.yaml``), shown as it is."""

from __future__ import annotations

from importlib.resources import files


def example_yaml() -> str:
    return files("convsync.demo").joinpath("example.yaml").read_text(encoding="utf-8")


def render() -> str:
    return "\n".join(
        [
            "# Example config",
            "",
            "The config `convsync demo` dry-runs — an online shop's CSV orders and a Russian",
            "CRM export (cp1251, `;`) sent to Google Ads, Yandex.Metrica and VK Ads. It is",
            "copied here from the installed package when the site is built. In the repository",
            "it is `config/example.yaml`; `convsync demo --keep demo/` writes it, with its",
            "sample exports dated relative to today, into `demo/` to try the other commands on:",
            "",
            "```sh",
            "convsync demo --keep demo/",
            "cd demo && convsync validate",
            "```",
            "",
            "```yaml",
            example_yaml().rstrip("\n"),
            "```",
            "",
        ]
    )
