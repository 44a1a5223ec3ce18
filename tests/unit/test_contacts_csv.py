"""Reading a contacts file (sync/operations/contacts.py): a bad row is refused with its line
number, the rest loads; addresses and webhook URLs are checked where they enter."""

from __future__ import annotations

import pytest

from sync.operations.contacts import ContactError, check_email, check_webhook_url, parse_csv


def test_rows_load_and_a_bad_row_is_refused_with_its_line() -> None:
    text = (
        "\ufeffNPSN,Email,Webhook_URL\n"
        "20100001,tu@sd1.sch.id; kepsek@sd1.sch.id,\n"
        "20100002,not-an-address,\n"
        "\n"
        '"20100003","ops@sd3.sch.id","https://hooks.example.org/a/b"\n'
        "1234,a@b.example,\n"
        "20100001,tu@sd1.sch.id;bk@sd1.sch.id\n"
        "20100004,,\n"
        "20100005,x@sd5.example,http://hooks.example.org/plain\n"
        "P1234567,a@pkbm.example,https://127.0.0.1/x,extra\n"
    )
    drafts, refused = parse_csv(text)
    assert sorted(drafts) == ["20100001", "20100003"]
    assert drafts["20100001"].emails == ["tu@sd1.sch.id", "kepsek@sd1.sch.id", "bk@sd1.sch.id"]
    assert drafts["20100003"].webhook_url == "https://hooks.example.org/a/b"
    assert [(r.line, r.why.split(" ")[0]) for r in refused] == [
        (3, "'not-an-address'"),
        (6, "NPSN"),
        (8, "no"),
        (9, "a"),
        (10, "4"),
    ]


def test_the_last_column_may_be_left_out() -> None:
    drafts, refused = parse_csv("npsn,email\r\nK1234567,lkp@k.example\r\n")
    assert refused == []
    assert drafts["K1234567"].webhook_url is None


@pytest.mark.parametrize(
    "text", ["", "npsn\n1,a@b.example\n", "npsn,email,phone\n", "email,email,npsn\n"]
)
def test_a_file_without_the_header_is_refused_whole(text: str) -> None:
    with pytest.raises(ContactError, match=r"header|empty"):
        parse_csv(text)


def test_two_webhooks_for_one_school_refuse_the_second_row() -> None:
    _drafts, refused = parse_csv(
        "npsn,email,webhook_url\n"
        "20100001,a@x.example,https://one.example/h\n"
        "20100001,b@x.example,https://two.example/h\n"
    )
    assert [r.line for r in refused] == [3]


@pytest.mark.parametrize(
    "bad", ["a@b", "a b@c.example", "a@b.example\r\nBcc: x@y.example", "@b.example", "a@-b.example"]
)
def test_an_address_that_could_break_a_header_is_refused(bad: str) -> None:
    with pytest.raises(ContactError):
        check_email(bad)


def test_webhook_urls() -> None:
    assert check_webhook_url(" https://hooks.example.org/x ") == "https://hooks.example.org/x"
    assert check_webhook_url("http://127.0.0.1:9000/hook") == "http://127.0.0.1:9000/hook"
    for bad in ("ftp://x.example/", "http://hooks.example.org/x", "https://u:p@x.example/"):
        with pytest.raises(ContactError):
            check_webhook_url(bad)
