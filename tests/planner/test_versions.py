"""Build and EAS version parsing: every form eas-moves.md shows, and refusal of the rest."""

from __future__ import annotations

import pytest

from exchange.versions import (
    BUILD_2007_SP1,
    BUILD_2010_SP2_RU6,
    BUILD_2010_SP3,
    BUILD_2010_SP3_RU9,
    BUILD_2013_CU8,
    BUILD_SE_MIN,
    ExchangeVersion,
    Generation,
    describe,
    generation_of,
    parse_eas_version,
    parse_version,
)

EV = ExchangeVersion
G = Generation


@pytest.mark.parametrize(
    ("text", "version", "generation", "label"),
    [
        # AdminDisplayVersion as printed (eas-moves.md §5)
        ("Version 6.5 (Build 6944.4)", EV(6, 5, 6944, 4), G.EX2003, "Exchange 2003 RTM"),
        (
            "Version 6.5 (Build 7226.1: Service Pack 1)",
            EV(6, 5, 7226, 1),
            G.EX2003,
            "Exchange 2003 SP1",
        ),
        (
            "Version 6.5 (Build 7638.2: Service Pack 2)",
            EV(6, 5, 7638, 2),
            G.EX2003,
            "Exchange 2003 SP2",
        ),
        ("Version 8.0 (Build 685.25)", EV(8, 0, 685, 25), G.EX2007, "Exchange 2007 RTM"),
        ("Version 8.1 (Build 240.6)", EV(8, 1, 240, 6), G.EX2007, "Exchange 2007 SP1"),
        ("Version 8.2 (Build 176.2)", EV(8, 2, 176, 2), G.EX2007, "Exchange 2007 SP2"),
        ("Version 8.3 (Build 83.6)", EV(8, 3, 83, 6), G.EX2007, "Exchange 2007 SP3"),
        ("Version 14.0 (Build 639.21)", EV(14, 0, 639, 21), G.EX2010, "Exchange 2010 RTM"),
        ("Version 14.1 (Build 218.15)", EV(14, 1, 218, 15), G.EX2010, "Exchange 2010 SP1"),
        ("Version 14.2 (Build 247.5)", EV(14, 2, 247, 5), G.EX2010, "Exchange 2010 SP2"),
        ("Version 14.3 (Build 123.4)", EV(14, 3, 123, 4), G.EX2010, "Exchange 2010 SP3"),
        ("Version 15.0 (Build 516.32)", EV(15, 0, 516, 32), G.EX2013, "Exchange 2013 RTM"),
        ("Version 15.0 (Build 847.32)", EV(15, 0, 847, 32), G.EX2013, "Exchange 2013 SP1 (CU4)"),
        ("Version 15.0 (Build 1076.9)", EV(15, 0, 1076, 9), G.EX2013, "Exchange 2013 CU8"),
        ("Version 15.0 (Build 1497.2)", EV(15, 0, 1497, 2), G.EX2013, "Exchange 2013 CU23"),
        ("Version 15.1 (Build 225.42)", EV(15, 1, 225, 42), G.EX2016, "Exchange 2016 RTM"),
        ("Version 15.1 (Build 2507.6)", EV(15, 1, 2507, 6), G.EX2016, "Exchange 2016 CU23"),
        ("Version 15.2 (Build 221.12)", EV(15, 2, 221, 12), G.EX2019, "Exchange 2019 RTM"),
        ("Version 15.2 (Build 1748.10)", EV(15, 2, 1748, 10), G.EX2019, "Exchange 2019 CU15"),
        ("Version 15.2 (Build 2562.17)", EV(15, 2, 2562, 17), G.SE, "Exchange SE RTM"),
        # dotted builds, with and without a leading v
        ("14.3.123.4", EV(14, 3, 123, 4), G.EX2010, "Exchange 2010 SP3"),
        ("15.2.1748.10", EV(15, 2, 1748, 10), G.EX2019, "Exchange 2019 CU15"),
        ("8.1.240.6", EV(8, 1, 240, 6), G.EX2007, "Exchange 2007 SP1"),
        ("6.5.7638.2", EV(6, 5, 7638, 2), G.EX2003, "Exchange 2003 SP2"),
        ("v15.1.2507.6", EV(15, 1, 2507, 6), G.EX2016, "Exchange 2016 CU23"),
        # rollups are only visible in ExSetup's file version (zero-padded as Windows prints it)
        ("14.2.342.3", EV(14, 2, 342, 3), G.EX2010, "Exchange 2010 SP2 RU6"),
        ("14.3.235.1", EV(14, 3, 235, 1), G.EX2010, "Exchange 2010 SP3 RU9"),
        ("15.01.2507.035", EV(15, 1, 2507, 35), G.EX2016, "Exchange 2016 CU23"),
        ("8.3.517.0", EV(8, 3, 517, 0), G.EX2007, "Exchange 2007 SP3 RU23"),
        ("6.5.7654.4", EV(6, 5, 7654, 4), G.EX2003, "Exchange 2003 SP2 (2008-08 hotfix roll-up)"),
    ],
)
def test_every_build_form_parses_to_its_version_generation_and_label(
    text: str, version: ExchangeVersion, generation: Generation, label: str
) -> None:
    parsed = parse_version(text)
    assert parsed == version
    assert generation_of(parsed) is generation
    assert describe(parsed) == label


@pytest.mark.parametrize(
    "text",
    [
        "  Version   15.1 ( Build 2507.6 )  ",
        "version 15.1 (build 2507.6)",
        "\tVersion 15.1\n(Build 2507.6)",
        " v 15.1.2507.6 ",
    ],
)
def test_parsing_tolerates_whitespace_and_case(text: str) -> None:
    assert parse_version(text) == EV(15, 1, 2507, 6)


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "junk",
        "Exchange 2016",
        "15.1",
        "15.1.2507",  # 3 parts would compare below its own rollups; refused, not padded
        "15.1.2507.6.1",
        "0.1 (14.0.100.0)",  # ExchangeVersion is the AD schema version, not the product build
        "0.0 (6.5.6500.0)",
        "0.1 (8.0.535.0)",
        "0.20.0.0",
        "Version 15.1 (Build 2507)",
        "Version 15.1",
        "15.1.2507.x",
        "Version 6.5 (Build 6944.x)",
        "-15.1.2507.6",
        "15,1,2507,6",
    ],
)
def test_unrecognised_text_is_refused_not_guessed(text: str | None) -> None:
    assert parse_version(text) is None


def test_non_strings_are_refused() -> None:
    assert parse_version(15.1) is None  # type: ignore[arg-type]
    assert parse_version(EV(15, 1)) is None  # type: ignore[arg-type]


def test_se_and_2019_split_at_build_2562() -> None:
    assert generation_of(EV(15, 2, 2561, 999)) is G.EX2019
    assert generation_of(EV(15, 2, 1748, 37)) is G.EX2019  # a later 2019 SU stays on 1748
    assert generation_of(EV(15, 2, 2562, 0)) is G.SE
    assert generation_of(EV(15, 2, 2562, 17)) is G.SE
    assert generation_of(EV(15, 2, 2700, 1)) is G.SE
    assert EV(15, 2, 2562, 0) == BUILD_SE_MIN


def test_7683_is_read_as_2003_sp2_like_7638() -> None:
    # Q-2003-SP2: Microsoft's table prints 6.5.7683 for SP2; shell output says 7638.
    assert describe(parse_version("6.5.7683.0")) == "Exchange 2003 SP2"
    assert describe(parse_version("Version 6.5 (Build 7683.2: Service Pack 2)")) == (
        "Exchange 2003 SP2"
    )
    assert generation_of(parse_version("6.5.7683.0")) is G.EX2003


@pytest.mark.parametrize(
    ("version", "generation"),
    [
        (None, None),
        (EV(6, 0, 6249, 0), None),  # Exchange 2000 is not a generation the planner knows
        (EV(7, 0, 1, 0), None),
        (EV(15, 3, 1, 0), None),
        (EV(16, 0, 1, 0), None),
        (EV(8, 0, 685, 25), G.EX2007),
        (EV(14, 0, 639, 21), G.EX2010),
    ],
)
def test_generation_of_knows_only_real_generations(
    version: ExchangeVersion | None, generation: Generation | None
) -> None:
    assert generation_of(version) is generation


def test_describe_names_builds_between_known_releases_after_the_one_below() -> None:
    assert describe(EV(15, 0, 1156, 6)) == "Exchange 2013 CU8 or later (15.0.1156.6)"
    assert describe(EV(14, 3, 300, 0)) == "Exchange 2010 SP3 RU9 or later (14.3.300.0)"
    assert describe(EV(15, 0, 100, 0)) == "Exchange 2013 (15.0.100.0)"
    assert describe(None) == "unknown version"
    assert describe(EV(16, 0, 1, 0)) == "unknown version (16.0.1.0)"


def test_versions_compare_as_tuples_not_strings_or_floats() -> None:
    assert EV(15, 0, 1076, 9) > EV(15, 0, 847, 32)  # "1076" < "847" as strings
    assert EV(14, 3, 123, 4) > EV(14, 2, 342, 3)
    assert EV(14, 2, 342, 3) > EV(14, 2, 247, 5)  # SP2 RU6 over SP2 as shown
    assert str(EV(15, 1, 2507, 6)) == "15.1.2507.6"
    assert str(EV(15, 1)) == "15.1.0.0"


def test_threshold_constants_match_eas_moves_section_5() -> None:
    assert (
        EV(8, 1, 240, 6),
        EV(14, 2, 342, 3),
        EV(14, 3, 123, 4),
    ) == (BUILD_2007_SP1, BUILD_2010_SP2_RU6, BUILD_2010_SP3)
    assert (EV(14, 3, 235, 1), EV(15, 0, 1076, 9)) == (BUILD_2010_SP3_RU9, BUILD_2013_CU8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.1", (12, 1)),
        ("16.1", (16, 1)),
        ("14", (14, 0)),
        ("2.5", (2, 5)),
        (" 14.1 ", (14, 1)),
        ("12.10", (12, 10)),
        ("1.0", (1, 0)),
    ],
)
def test_eas_versions_parse_to_integer_pairs(text: str, expected: tuple[int, int]) -> None:
    parsed = parse_eas_version(text)
    assert parsed == expected
    assert all(type(part) is int for part in parsed or ())


@pytest.mark.parametrize("text", [None, "", "junk", "16.1.0", "v16.1", "16.", ".1", "16,1", "-1"])
def test_eas_junk_is_refused(text: str | None) -> None:
    assert parse_eas_version(text) is None


def test_eas_floats_are_refused() -> None:
    assert parse_eas_version(12.1) is None  # type: ignore[arg-type]


def test_eas_versions_compare_as_versions_not_floats() -> None:
    # As floats 12.10 == 12.1 and 12.9 > 12.10; as versions 12.10 is the later one.
    v = {text: parse_eas_version(text) for text in ("2.5", "12.0", "12.1", "12.9", "12.10", "14.0")}
    assert v["12.10"] != v["12.1"]
    assert v["12.10"] > v["12.9"] > v["12.1"] > v["12.0"] > v["2.5"]  # type: ignore[operator]
    assert v["14.0"] > v["12.10"]  # type: ignore[operator]
