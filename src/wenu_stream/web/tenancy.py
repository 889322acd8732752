"""Tenancy: what a caller may see, decided here and nowhere else.

Every read endpoint asks this module before it reads: a series, site, company
or alarm instance of another company is *not found* (404), exactly like one
that does not exist, so a customer learns nothing about other companies; a
list is narrowed to the caller's company. Staff (no company) see everything.
Operations data that belongs to no company (dead letters, quarantine,
checkpoints, the catalog's change sets and versions, the audit log) is for
staff only (403 for a customer: the whole endpoint, never one resource).
"""

from __future__ import annotations

from litestar.exceptions import NotFoundException, PermissionDeniedException

from wenu_stream.catalog.directory import ChannelInfo
from wenu_stream.web.auth import Principal, Role
from wenu_stream.web.catalog_access import CatalogView, SiteInfo


def _visible(p: Principal, company: str) -> bool:
    return p.company is None or p.company == company


def series(p: Principal, view: CatalogView, series_id: str) -> ChannelInfo:
    """The catalog entry of a series the caller may see; 404 otherwise."""
    info = view.snapshot.series.get(series_id)
    if info is None or not _visible(p, info.company):
        raise NotFoundException(f"no series {series_id!r}")
    return info


def site(p: Principal, view: CatalogView, site_id: str) -> SiteInfo:
    info = view.sites.get(site_id)
    if info is None or not _visible(p, info.company):
        raise NotFoundException(f"no site {site_id!r}")
    return info


def company(p: Principal, view: CatalogView, company_id: str) -> str:
    if company_id not in view.companies or not _visible(p, company_id):
        raise NotFoundException(f"no company {company_id!r}")
    return company_id


def company_filter(p: Principal, view: CatalogView, requested: str | None) -> str | None:
    """The company a list is narrowed to: the caller's own, or the one asked for (checked), or None (staff, all)."""
    if requested is not None:
        return company(p, view, requested)
    return p.company


def visible(p: Principal, company_id: str) -> bool:
    """Whether an item of ``company_id`` may be shown (for lists read from stores that hold every company)."""
    return _visible(p, company_id)


def staff_only(p: Principal) -> None:
    if not p.staff:
        raise PermissionDeniedException("staff only")


def require(p: Principal, role: Role) -> None:
    if not p.at_least(role):
        raise PermissionDeniedException(f"needs the {role} role")
