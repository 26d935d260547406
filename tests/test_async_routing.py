"""aiogram runs every sync filter or handler through `asyncio.to_thread` (about 0.2 ms a hop, a
dozen or more for one text message once). Every handler and filter the bot registers is async."""

from __future__ import annotations

from aiogram import Router

from handlers import get_routers


def _all(router: Router) -> list[Router]:
    return [router, *(r for sub in router.sub_routers for r in _all(sub))]


def test_no_sync_filter_or_handler_is_registered() -> None:
    sync = []
    for top in get_routers():
        for router in _all(top):
            for name, observer in router.observers.items():
                for filter_object in observer._handler.filters or []:  # the router's own filters
                    if not filter_object.awaitable:
                        sync.append(f"{router.name}.{name} filter {filter_object.callback!r}")
                for handler in observer.handlers:
                    if not handler.awaitable:
                        sync.append(f"{router.name}.{name} handler {handler.callback!r}")
                    for filter_object in handler.filters or []:
                        if not filter_object.awaitable:
                            sync.append(f"{router.name}.{name} {handler.callback.__name__}: {filter_object.callback!r}")
    assert sync == []
