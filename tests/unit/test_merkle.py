"""state.merkle: RFC 6962's tree hash, inclusion paths and consistency proofs (issue 26).

The test vectors are the ones the Certificate Transparency implementations share (Trillian's
merkle tests, now github.com/transparency-dev/merkle, file proof/verify_test.go): eight
leaves, the roots of the trees of their first 1..8, and some inclusion and consistency
proofs. There, an inclusion vector's leaf number counts from 1; here indices count from 0.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state import merkle
from state.merkle import MerkleTree

LEAVES = [
    bytes.fromhex(text)
    for text in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(text)
    for text in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]
# (leaf index from 0, tree size, path)
INCLUSION = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof)
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


# -- a naive reference: RFC 6962 section 2.1, word for word, recursive ----------------------


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return _sha(b"")
    if len(leaves) == 1:
        return _sha(b"\x00" + leaves[0])
    k = _split(len(leaves))
    return _sha(b"\x01" + ref_mth(leaves[:k]) + ref_mth(leaves[k:]))


def ref_path(m: int, leaves: list[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, leaves[:k]), ref_mth(leaves[k:])]
    return [*ref_path(m - k, leaves[k:]), ref_mth(leaves[:k])]


def ref_subproof(m: int, leaves: list[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [ref_mth(leaves)]
    k = _split(n)
    if m <= k:
        return [*ref_subproof(m, leaves[:k], complete), ref_mth(leaves[k:])]
    return [*ref_subproof(m - k, leaves[k:], False), ref_mth(leaves[:k])]


def ref_consistency(m: int, leaves: list[bytes]) -> list[bytes]:
    return [] if m in (0, len(leaves)) else ref_subproof(m, leaves, True)


# -- the vectors -----------------------------------------------------------------------------


def test_the_empty_tree_and_single_hashes() -> None:
    assert merkle.root([]) == bytes.fromhex(
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert MerkleTree([]).size == 0
    assert merkle.leaf_hash(b"") == ROOTS[0]
    assert merkle.node_hash(ROOTS[0], ROOTS[1]) == _sha(b"\x01" + ROOTS[0] + ROOTS[1])


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_of_the_vectors(size: int) -> None:
    assert merkle.root(LEAVES[:size]) == ROOTS[size - 1]
    assert MerkleTree.from_leaves(LEAVES).root_at(size) == ROOTS[size - 1]
    assert ref_mth(LEAVES[:size]) == ROOTS[size - 1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_vectors(index: int, size: int, path: list[str]) -> None:
    expected = [bytes.fromhex(item) for item in path]
    tree = MerkleTree.from_leaves(LEAVES[:size])
    assert tree.inclusion_path(index) == expected
    leaf = merkle.leaf_hash(LEAVES[index])
    assert merkle.verify_inclusion(index, size, leaf, expected, ROOTS[size - 1])
    # What Trillian's verifier refuses, refused here as well.
    wrong = [
        (index - 1, size, leaf, expected, ROOTS[size - 1]),
        (index + 1, size, leaf, expected, ROOTS[size - 1]),
        (index ^ 2, size, leaf, expected, ROOTS[size - 1]),
        (index, size * 2, leaf, expected, ROOTS[size - 1]),
        (index, size // 2, leaf, expected, ROOTS[size - 1]),
        (index, size, merkle.leaf_hash(b"WrongLeaf"), expected, ROOTS[size - 1]),
        (index, size, leaf, expected, merkle.EMPTY_ROOT),
        (index, size, leaf, expected, SOME_HASH),
        (index, size, leaf, [*expected, b""], ROOTS[size - 1]),
        (index, size, leaf, [*expected, ROOTS[size - 1]], ROOTS[size - 1]),
        (index, size, leaf, [b"", *expected], ROOTS[size - 1]),
        (index, size, leaf, [ROOTS[size - 1], *expected], ROOTS[size - 1]),
    ]
    for position in range(len(expected)):
        flipped = list(expected)
        flipped[position] = bytes([flipped[position][0] ^ 8]) + flipped[position][1:]
        wrong.append((index, size, leaf, flipped, ROOTS[size - 1]))
    if expected:
        wrong.append((index, size, leaf, expected[:-1], ROOTS[size - 1]))
    if len(expected) > 1:
        wrong.append((index, size, leaf, [expected[0], SOME_HASH, *expected[1:]], ROOTS[size - 1]))
    for case in wrong:
        assert not merkle.verify_inclusion(*case), case


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_vectors(old: int, new: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(item) for item in proof]
    assert MerkleTree.from_leaves(LEAVES[:new]).consistency_proof(old) == expected
    assert merkle.consistency_proof(LEAVES[:new], old) == expected
    old_root, new_root = ROOTS[old - 1], ROOTS[new - 1]
    assert merkle.verify_consistency(old, new, old_root, new_root, expected)
    if not expected:
        return
    wrong = [
        (old - 1, new, old_root, new_root, expected),
        (old + 1, new, old_root, new_root, expected),
        (old ^ 2, new, old_root, new_root, expected),
        (old, new * 2, old_root, new_root, expected),
        (old, new // 2, old_root, new_root, expected),
        (old, new, SOME_HASH, new_root, expected),
        (old, new, old_root, SOME_HASH, expected),
        (old, new, new_root, old_root, expected),
        (old, new, old_root, new_root, []),
        (old, new, old_root, new_root, [*expected, b""]),
        (old, new, old_root, new_root, [*expected, old_root]),
        (old, new, old_root, new_root, [*expected, new_root]),
        (old, new, old_root, new_root, [b"", *expected]),
        (old, new, old_root, new_root, [old_root, *expected]),
        (old, new, old_root, new_root, [new_root, *expected]),
        (old, new, old_root, new_root, [expected[0], *expected]),
        (old, new, old_root, new_root, expected[:-1]),
    ]
    for position in range(len(expected)):
        flipped = list(expected)
        flipped[position] = bytes([flipped[position][0] ^ 16]) + flipped[position][1:]
        wrong.append((old, new, old_root, new_root, flipped))
    for case in wrong:
        assert not merkle.verify_consistency(*case), case[:2]


def test_trivial_consistency() -> None:
    some, other = ROOTS[0], ROOTS[1]
    assert merkle.verify_consistency(0, 0, some, some, [])
    assert merkle.verify_consistency(0, 1, some, other, [])
    assert merkle.verify_consistency(1, 1, other, other, [])
    assert not merkle.verify_consistency(1, 1, some, other, [])  # same size, other root
    assert not merkle.verify_consistency(1, 0, some, other, [])  # the past after the present
    assert not merkle.verify_consistency(2, 1, some, other, [])
    assert not merkle.verify_consistency(1, 2, some, other, [])  # no proof
    assert not merkle.verify_consistency(0, 1, some, some, [some])  # a proof where none is
    assert not merkle.verify_consistency(1, 1, some, some, [some])


def test_malformed_input_is_refused_not_raised() -> None:
    tree = MerkleTree.from_leaves(LEAVES)
    leaf = tree.leaf_hash(3)
    assert merkle.root_from_inclusion(3, 8, leaf, tree.inclusion_path(3)) == tree.root
    assert merkle.root_from_inclusion(8, 8, leaf, []) is None
    assert merkle.root_from_inclusion(-1, 8, leaf, []) is None
    assert merkle.root_from_inclusion(0, 0, leaf, []) is None
    assert merkle.root_from_inclusion(3, 8, leaf[:31], tree.inclusion_path(3)) is None
    assert not merkle.verify_inclusion(0, 1, b"", [], b"")
    with pytest.raises(IndexError):
        tree.inclusion_path(8)
    with pytest.raises(ValueError, match="no prefix"):
        tree.consistency_proof(9)
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree([b"short"])


# -- against the reference, 1 to 2,000 leaves ------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=2000),
    salt=st.binary(max_size=8),
    data=st.data(),
)
def test_the_tree_is_the_reference(size: int, salt: bytes, data: st.DataObject) -> None:
    leaves = [salt + index.to_bytes(4, "big") for index in range(size)]
    tree = MerkleTree.from_leaves(leaves)
    assert tree.size == size
    assert tree.root == ref_mth(leaves)
    for index in data.draw(st.lists(st.integers(0, size - 1), min_size=1, max_size=4)):
        path = tree.inclusion_path(index)
        assert path == ref_path(index, leaves)
        assert merkle.verify_inclusion(
            index, size, merkle.leaf_hash(leaves[index]), path, tree.root
        )
    for old in data.draw(st.lists(st.integers(0, size), min_size=1, max_size=4)):
        proof = tree.consistency_proof(old)
        assert proof == ref_consistency(old, leaves)
        old_root = tree.root_at(old)
        assert old_root == ref_mth(leaves[:old])
        assert merkle.verify_consistency(old, size, old_root, tree.root, proof)


@settings(max_examples=40, deadline=None)
@given(
    old=st.integers(min_value=1, max_value=300),
    extra=st.integers(min_value=1, max_value=300),
    changed=st.data(),
)
def test_a_rewritten_history_is_not_consistent(
    old: int, extra: int, changed: st.DataObject
) -> None:
    leaves = [index.to_bytes(4, "big") for index in range(old + extra)]
    old_root = merkle.root(leaves[:old])
    rewritten = list(leaves)
    index = changed.draw(st.integers(0, old - 1))
    rewritten[index] = b"rewritten"
    tree = MerkleTree.from_leaves(rewritten)
    proof = tree.consistency_proof(old)
    assert not merkle.verify_consistency(old, len(leaves), old_root, tree.root, proof)
    # The honest tree holds.
    honest = MerkleTree.from_leaves(leaves)
    assert merkle.verify_consistency(
        old, len(leaves), old_root, honest.root, honest.consistency_proof(old)
    )


def test_every_leaf_of_a_large_tree_proves() -> None:
    leaves = [index.to_bytes(4, "big") for index in range(100_000)]
    tree = MerkleTree.from_leaves(leaves)
    assert tree.root == ref_mth(leaves)
    for index in range(0, 100_000, 997):
        path = tree.inclusion_path(index)
        assert len(path) <= 17  # ceil(log2(100,000))
        assert merkle.verify_inclusion(index, 100_000, tree.leaf_hash(index), path, tree.root)
