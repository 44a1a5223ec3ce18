"""RFC 6962 (Certificate Transparency) Merkle trees: the tree hash, inclusion (audit) paths,
consistency proofs, and their verifiers. Pure functions over bytes; no I/O.

The tree (RFC 6962 section 2.1)
-------------------------------
- the hash of a leaf is ``SHA-256(0x00 || leaf)``, of an inner node ``SHA-256(0x01 || left ||
  right)``: the two prefixes keep a leaf from passing for a node (a second-preimage attack);
- the Merkle Tree Hash of n > 1 leaves splits them at k, the largest power of two below n:
  ``MTH(D[0:n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))``; of one leaf, its leaf hash;
  of none, ``SHA-256()`` (``EMPTY_ROOT``).

``MerkleTree`` builds the tree once, level by level (each level pairs the one below from the
left, and a last node without a partner moves up unchanged), which gives the same nodes as
the recursive definition: every node of the recursive tree is a node of some level, at index
``start >> level``. So a path or a proof is a walk over stored nodes, and a tree of 100,000
leaves costs about 200,000 SHA-256 once, whatever the number of proofs taken of it.

The verifiers follow RFC 9162 (section 2.1.3.2 for inclusion, 2.1.4.2 for consistency), which
checks the same proofs as RFC 6962 describes, with no recursion. They return ``False`` for any
malformed input (an index outside the tree, a path of the wrong length, a hash that is not 32
bytes) rather than raising: a verifier reads files written by others.

What a leaf is for the ledger's seal is said in ``state.seal``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "consistency_proof",
    "inclusion_path",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``."""
    return hashlib.sha256(_LEAF + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """k with k < n <= 2k (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """The RFC 6962 tree over leaves given by their leaf hashes, every level kept.

    ``MerkleTree.from_leaves(leaves)`` hashes the leaves first; the constructor takes leaf
    hashes (32 bytes each), for a caller that already has them.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        level = list(leaf_hashes)
        for item in level:
            if len(item) != HASH_SIZE:
                raise ValueError(f"a leaf hash is {HASH_SIZE} bytes, not {len(item)}")
        levels = [level]
        sha256 = hashlib.sha256
        while len(level) > 1:
            upper = [
                sha256(_NODE + level[i] + level[i + 1]).digest()
                for i in range(0, len(level) - 1, 2)
            ]
            if len(level) % 2:
                upper.append(level[-1])  # the last node without a partner moves up as it is
            levels.append(upper)
            level = upper
        self._levels = levels

    @classmethod
    def from_leaves(cls, leaves: Iterable[bytes]) -> MerkleTree:
        """The tree over ``leaves`` (raw leaf bytes, hashed here with the 0x00 prefix)."""
        return cls(leaf_hash(leaf) for leaf in leaves)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        """The Merkle Tree Hash of all the leaves (``EMPTY_ROOT`` for none)."""
        top = self._levels[-1]
        return top[0] if top else EMPTY_ROOT

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        self._check_index(index)
        return self._levels[0][index]

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is not in a tree of {self.size} leaves")

    def _node(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) of a node of the tree: a stored node, no hashing."""
        level = (end - start - 1).bit_length()
        # Only the tree's own nodes are asked for (the walk in consistency_proof).
        assert start % (1 << level) == 0, (start, end)
        assert end == min(start + (1 << level), self.size), (start, end)
        return self._levels[level][start >> level]

    def root_at(self, size: int) -> bytes:
        """The Merkle Tree Hash of the first ``size`` leaves: the root this tree had then.

        The first ``size`` leaves split into the complete subtrees named by the binary digits
        of ``size``, largest first; their MTH folds them from the right.
        """
        if not 0 <= size <= self.size:
            raise ValueError(f"a tree of {self.size} leaves had no size {size}")
        if size == 0:
            return EMPTY_ROOT
        subtrees: list[bytes] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size & (1 << level):
                subtrees.append(self._levels[level][start >> level])
                start += 1 << level
        result = subtrees.pop()
        while subtrees:
            result = node_hash(subtrees.pop(), result)
        return result

    def inclusion_path(self, index: int) -> list[bytes]:
        """RFC 6962 section 2.1.1's audit path of leaf ``index``, from the leaf up."""
        self._check_index(index)
        path = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return path

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """RFC 6962 section 2.1.2's proof that the first ``old_size`` leaves are this tree's
        prefix: empty for ``old_size`` 0 or the tree's own size."""
        size = self.size
        if not 0 <= old_size <= size:
            raise ValueError(f"a tree of {size} leaves has no prefix of {old_size}")
        if old_size in (0, size):
            return []
        # SUBPROOF(m, D[start:end], complete), unrolled: each step keeps the half that holds
        # the old tree's edge and records the other half, which goes after the deeper hashes.
        proof: list[bytes] = []
        m, start, end, complete = old_size, 0, size, True
        while m != end - start:
            k = _largest_power_of_two_below(end - start)
            if m <= k:
                proof.append(self._node(start + k, end))
                end = start + k
            else:
                proof.append(self._node(start, start + k))
                m, start, complete = m - k, start + k, False
        if not complete:
            proof.append(self._node(start, end))
        proof.reverse()
        return proof


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH over ``leaves`` (raw leaf bytes)."""
    return MerkleTree.from_leaves(leaves).root


def inclusion_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` among ``leaves`` (raw leaf bytes)."""
    return MerkleTree.from_leaves(leaves).inclusion_path(index)


def consistency_proof(leaves: Sequence[bytes], old_size: int) -> list[bytes]:
    """The consistency proof between the first ``old_size`` of ``leaves`` and all of them."""
    return MerkleTree.from_leaves(leaves).consistency_proof(old_size)


def _hashes(items: Sequence[bytes]) -> bool:
    return all(isinstance(item, bytes) and len(item) == HASH_SIZE for item in items)


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root that ``path`` leads to from leaf hash ``leaf`` at ``index`` of a tree of
    ``size`` (RFC 9162 section 2.1.3.2, steps 1 to 5); ``None`` when the path cannot belong
    to that position (index outside the tree, a path of the wrong length, a bad hash)."""
    if not 0 <= index < size or not _hashes([leaf, *path]):
        return None
    fn, sn, result = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return None  # the path is longer than the tree is high
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            if not fn & 1:
                # A last node without a partner: it moved up levels unchanged.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            result = node_hash(result, sibling)
        fn >>= 1
        sn >>= 1
    return result if sn == 0 else None


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], expected_root: bytes
) -> bool:
    """Whether ``path`` proves leaf hash ``leaf`` is leaf ``index`` of the tree of ``size``
    leaves whose root is ``expected_root``."""
    return root_from_inclusion(index, size, leaf, path) == expected_root


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> bool:
    """Whether ``proof`` shows the tree of ``old_size`` leaves with ``old_root`` is the prefix
    of the tree of ``new_size`` leaves with ``new_root`` (RFC 9162 section 2.1.4.2).

    A tree of 0 leaves is everyone's prefix, and a tree is its own: both with an empty proof
    (and, for the latter, equal roots).
    """
    if not 0 <= old_size <= new_size or not _hashes([old_root, new_root, *proof]):
        return False
    if old_size == 0:
        return not proof
    if old_size == new_size:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)  # the old tree is a complete subtree: its root starts it
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first = second = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            first = node_hash(node, first)
            second = node_hash(node, second)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            second = node_hash(second, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and first == old_root and second == new_root
