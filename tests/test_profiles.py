"""Board profiles in firmware_configs/: every shipped file validates; a bad one names the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from firmware_configs.profiles import (
    ProfileError,
    get_profile,
    list_profiles,
    load_profile,
    parse_profile,
    profile_paths,
)


def test_every_shipped_profile_validates() -> None:
    paths = profile_paths()
    assert len(paths) >= 3
    profiles = list_profiles()
    assert {p.board for p in profiles} >= {"pi4", "pi3", "pi-zero-2w"}
    assert {p.audio.kind for p in profiles} >= {"usb", "hat", "i2s"}
    assert {p.network.kind for p in profiles} == {"ethernet", "wifi", "modem"}
    assert get_profile("pi4-usb").amplifier is not None


def _base() -> dict[str, object]:
    return yaml.safe_load((profile_paths()[0]).read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_unknown_field_is_named(tmp_path: Path) -> None:
    data = _base()
    assert isinstance(data["audio"], dict)
    data["audio"]["volum"] = 80
    with pytest.raises(ProfileError, match=r"audio\.volum: Extra inputs are not permitted"):
        load_profile(_write(tmp_path, data))


@pytest.mark.parametrize("pin", [0, 1, 28, 40, -3])
def test_impossible_gpio_pin_is_named(tmp_path: Path, pin: int) -> None:
    data = _base()
    data["amplifier"] = {"relay_gpio": pin}
    with pytest.raises(ProfileError, match=rf"amplifier\.relay_gpio: .*GPIO {pin} is not a BCM line"):
        load_profile(_write(tmp_path, data))


def test_relay_on_an_i2s_pin_is_refused() -> None:
    data = yaml.safe_load(Path(profile_paths()[0].parent / "pi-zero-2w-i2s.yaml").read_text(encoding="utf-8"))
    data["amplifier"]["relay_gpio"] = 19
    with pytest.raises(ProfileError, match="I²S pin"):
        parse_profile(data)
    data["amplifier"]["relay_gpio"] = 14
    with pytest.raises(ProfileError, match="UART pin"):
        parse_profile(data)


@pytest.mark.parametrize(("path", "value", "needle"), [
    (("network", "kind"), "lora", r"network\.kind"),
    (("cameras", "subnet"), "8.8.8.0/24", r"cameras\.subnet: .*not a private subnet"),
    (("sign", "port"), "COM3", r"sign\.port"),
    (("board",), "pi2", r"board"),
])
def test_bad_values_are_named(path: tuple[str, ...], value: str, needle: str) -> None:
    data = yaml.safe_load((profile_paths()[0].parent / "pi4-usb.yaml").read_text(encoding="utf-8"))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ProfileError, match=needle):
        parse_profile(data)


def test_name_must_match_file_and_bad_yaml(tmp_path: Path) -> None:
    data = _base()
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ProfileError, match="does not match the file name"):
        load_profile(path)
    path.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(path)
    with pytest.raises(ProfileError, match="no board profile 'nope'"):
        get_profile("nope")
