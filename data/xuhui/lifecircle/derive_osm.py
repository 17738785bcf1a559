#!/usr/bin/env python3
"""One-off: derive facilities_osm.csv from the OpenStreetMap points/areas of interest.

Usage: python3 derive_osm.py /path/to/shared/data > facilities_osm.csv

Keeps only the OSM classes (Geofabrik `fclass`) that some life-circle service type may use
(the mapping itself is in types.toml, which the district edits); an area becomes its
centroid. Data © OpenStreetMap contributors, ODbL 1.0.
"""
import csv, json, sys

KEEP = {
    "kindergarten", "school", "park", "playground", "dog_park", "convenience", "supermarket",
    "greengrocer", "market_place", "butcher", "bakery", "pharmacy", "chemist", "hospital",
    "clinic", "doctors", "dentist", "nursing_home", "community_centre", "library", "arts_centre",
    "theatre", "museum", "sports_centre", "pitch", "swimming_pool", "stadium", "track",
    "post_office", "bank",
}

def main(src):
    rows = []
    for name, prefix in (("xuhui_osm_pois_points_wgs84.geojson", "osm-n"),
                         ("xuhui_osm_pois_areas_wgs84.geojson", "osm-a")):
        with open(f"{src}/{name}", encoding="utf-8") as f:
            data = json.load(f)
        for feat in data["features"]:
            p = feat["properties"]
            if p["fclass"] not in KEEP:
                continue
            if feat["geometry"]["type"] == "Point":
                lon, lat = feat["geometry"]["coordinates"][:2]
            else:
                lon, lat = p["centroid_lon"], p["centroid_lat"]
            rows.append((f"{prefix}{p['osm_id']}", p["fclass"], (p.get("name") or "").strip(),
                         f"{lon:.6f}", f"{lat:.6f}", "yes" if p.get("in_xuhui") else "no"))
    rows.sort()
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["id", "class", "name", "lon", "lat", "in_xuhui"])
    w.writerows(rows)

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../../../../shared/data")
