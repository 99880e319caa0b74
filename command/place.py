"""Where a task is: its point snapped, in one statement, to the grid cell, community, street and
district that contain it, and to the nearest hotspot point within a set distance.

Every polygon test runs on the indexed `geom_3857` copies. Distances in Web Mercator are longer
than on the ground by 1/cos(latitude) (about 1.3 in Beijing), so metre radii are scaled by that
factor before they meet a 3857 index."""

from __future__ import annotations

from dataclasses import dataclass

from config import prepared

# A hotspot this close to a task's point is taken as the task's place on the ledger.
HOTSPOT_SNAP_M = 150.0

SNAP_SQL = """
WITH p AS (
    SELECT ST_Transform(ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4490), 3857) AS g,
           1.0 / cos(radians(%(lat)s)) AS k
)
SELECT c.code, c.community_id, c.street_id, c.district_id, s.code, d.code,
       (SELECT h.id FROM geo_hotspotpoint h
        WHERE h.status = 'open' AND ST_DWithin(h.geom_3857, p.g, %(radius)s * p.k)
              AND (%(category)s = '' OR h.category = %(category)s)
        ORDER BY h.geom_3857 <-> p.g LIMIT 1)
FROM p
LEFT JOIN LATERAL (SELECT code, community_id, street_id, district_id FROM geo_gridcell
                   WHERE ST_Intersects(geom_3857, p.g) ORDER BY code LIMIT 1) c ON TRUE
LEFT JOIN LATERAL (SELECT code FROM geo_street WHERE c.code IS NULL AND ST_Intersects(geom_3857, p.g)
                   ORDER BY code LIMIT 1) s ON TRUE
LEFT JOIN LATERAL (SELECT code FROM geo_district WHERE ST_Intersects(geom_3857, p.g)
                   ORDER BY code LIMIT 1) d ON TRUE
"""


@dataclass(frozen=True)
class Place:
    district: str | None
    street: str | None
    community: str | None
    grid_cell: str | None
    hotspot_id: int | None


def snap(lon: float, lat: float, hotspot_category: str = "", radius_m: float = HOTSPOT_SNAP_M) -> Place:
    [(cell, community, cell_street, cell_district, street, district, hotspot)] = prepared.fetch(
        SNAP_SQL, {"lon": lon, "lat": lat, "radius": radius_m, "category": hotspot_category})
    return Place(district=cell_district or district, street=cell_street or street, community=community,
                 grid_cell=cell, hotspot_id=hotspot)
