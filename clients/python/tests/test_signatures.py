"""``AsyncClient`` is the asyncio twin of ``Client``: every public method has the same name (``close`` is
``aclose``), the same parameters in the same order, of the same kinds, with the same defaults and the same
annotations. Only what async-vs-sync makes different may differ: the return annotation (a coroutine's result
or an async iterator), the sync streams' private ``_handle`` parameter (how another thread closes a blocking
stream; an async iterator closes with ``aclose()``), and the async-only helpers ``aclose``, ``complete``,
``fail`` and ``sync``."""
from __future__ import annotations

import inspect
import unittest

import runwatch

RENAMED = {"close": "aclose"}
ASYNC_ONLY = {"aclose", "complete", "fail", "sync"}


def public(cls: type) -> dict:
    return {name: inspect.getattr_static(cls, name) for name in dir(cls) if not name.startswith("_")}


def parameters(fn) -> list:
    """(name, kind, default, annotation) of each parameter but ``self`` and private ``_…`` ones."""
    return [(p.name, p.kind.name, repr(p.default), str(p.annotation))
            for p in inspect.signature(fn).parameters.values() if p.name != "self" and not p.name.startswith("_")]


class AsyncTwinSignatures(unittest.TestCase):
    def test_every_public_method_has_the_same_parameters_on_both_clients(self) -> None:
        sync, aio = public(runwatch.Client), public(runwatch.AsyncClient)
        missing = [RENAMED.get(n, n) for n in sync if RENAMED.get(n, n) not in aio]
        self.assertEqual(missing, [], "Client methods without an AsyncClient twin")
        extra = sorted(set(aio) - {RENAMED.get(n, n) for n in sync} - ASYNC_ONLY)
        self.assertEqual(extra, [], "AsyncClient methods without a Client twin")
        differences = []
        for name, attr in sorted(sync.items()):
            twin = aio[RENAMED.get(name, name)]
            if isinstance(attr, property) or isinstance(twin, property):
                if not (isinstance(attr, property) and isinstance(twin, property)):
                    differences.append(f"{name}: a property on one client only")
                continue
            mine, theirs = parameters(attr), parameters(twin)
            if mine != theirs:
                differences.append(f"{name}:\n  Client      {mine}\n  AsyncClient {theirs}")
        self.assertEqual(differences, [], "\n".join(differences))
        self.assertEqual(parameters(runwatch.Client.__init__), parameters(runwatch.AsyncClient.__init__))

    def test_the_comparison_sees_a_differing_annotation(self) -> None:
        def sync(self, kind: "Union[JobKind, str]" = "BATCH") -> None: ...  # noqa: F821

        def aio(self, kind: str = "BATCH") -> None: ...
        self.assertNotEqual(parameters(sync), parameters(aio))

    def test_coroutines_and_async_iterators_where_the_sync_client_blocks_or_streams(self) -> None:
        streams = {"watch", "job_updates", "jobs", "training_events", "job_commands", "activity"}
        for name, attr in public(runwatch.AsyncClient).items():
            if isinstance(attr, property) or name in ("sync", "job") or name in streams:
                continue
            self.assertTrue(inspect.iscoroutinefunction(attr), f"AsyncClient.{name} is a coroutine function")
        for name in streams:
            self.assertFalse(inspect.iscoroutinefunction(getattr(runwatch.AsyncClient, name)), name)


if __name__ == "__main__":
    unittest.main()
