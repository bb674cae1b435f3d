// The console's maps (Leaflet, installed from npm by scripts/setup.sh).
//
// #map on /console/map draws a marker for each located point the page lists (#map-placed li, refetched by
// htmx when the change feed says something moved): a marker keeps its place and only its state class
// changes, and the view is fitted to the markers again only when points come or go, so a user who panned
// keeps their view. .map-pick in a form is a location picker: a tap sets the latitude/longitude boxes,
// typing in them moves the pin.
//
// Tiles come from the page's data-tiles (LP_MAP_TILE_URL); with none, or when they fail to load, the map
// is a plain background and data-tiles-state says so (the page's note shows).
"use strict";

function centerOf(el) {
  const [lat, lon, zoom] = (el.dataset.center || "16.05,108.2,5").split(",").map(Number);
  return { at: [lat, lon], zoom: zoom };
}

function baseMap(el) {
  const center = centerOf(el);
  const map = L.map(el, { zoomSnap: 0.5 }).setView(center.at, center.zoom);
  map.attributionControl.setPrefix(false);
  const url = el.dataset.tiles;
  if (!url) {
    el.dataset.tilesState = "none";
    return map;
  }
  let loaded = 0;
  const layer = L.tileLayer(url, { maxZoom: 19, attribution: el.dataset.attribution || "" });
  layer.on("tileload", () => { loaded += 1; el.dataset.tilesState = "ok"; });
  // A tile server that cannot be reached leaves the markers on the plain background; say why once.
  layer.on("tileerror", () => { if (!loaded) el.dataset.tilesState = "failed"; });
  layer.addTo(map);
  return map;
}

// ---- the map page --------------------------------------------------------------------------------------

function markerIcon(point) {
  const glyph = point.kind === "camera" ? "▲" : "●";
  return L.divIcon({
    className: `map-marker kind-${point.kind} state-${point.state}`,
    html: `<span aria-hidden="true">${glyph}</span>`,
    iconSize: [26, 26],
    iconAnchor: [13, 13],
    popupAnchor: [0, -12],
  });
}

function popupFor(point) {
  // Built from text nodes: a device's name is staff's text, never markup.
  const box = document.createElement("div");
  box.className = "map-popup";
  const link = document.createElement("a");
  link.href = point.href;
  link.textContent = point.name;
  const title = document.createElement("strong");
  title.append(link);
  const line = document.createElement("div");
  line.className = "muted";
  line.textContent = [point.kindLabel, point.stateLabel, point.ward].filter(Boolean).join(" · ");
  box.append(title, line);
  if (point.detail) {
    const detail = document.createElement("div");
    detail.textContent = point.detail;
    box.append(detail);
  }
  return box;
}

function readPoints() {
  const points = new Map();
  for (const li of document.querySelectorAll("#map-placed li[data-id]")) {
    const d = li.dataset;
    const lat = Number(d.lat);
    const lon = Number(d.lon);
    if (!Number.isFinite(lat) || !Number.isFinite(lon)) continue;
    points.set(`${d.kind}:${d.id}`, {
      kind: d.kind, id: d.id, name: d.name, lat: lat, lon: lon, state: d.state, stateLabel: d.stateLabel,
      kindLabel: d.kindLabel, detail: d.detail, ward: d.ward, href: d.href,
    });
  }
  return points;
}

function tagMarker(marker, point) {
  const el = marker.getElement();
  if (!el) return;
  el.dataset.kind = point.kind;
  el.dataset.id = point.id;
  el.dataset.state = point.state;
  el.setAttribute("title", `${point.name} · ${point.stateLabel}`);
}

function startFleetMap(el) {
  const map = baseMap(el);
  const markers = new Map();

  function sync() {
    const points = readPoints();
    let changed = false;
    for (const [key, marker] of markers) {
      if (!points.has(key)) {
        marker.remove();
        markers.delete(key);
        changed = true;
      }
    }
    for (const [key, point] of points) {
      let marker = markers.get(key);
      if (!marker) {
        marker = L.marker([point.lat, point.lon], { icon: markerIcon(point), keyboard: true, riseOnHover: true });
        marker.addTo(map);
        markers.set(key, marker);
        changed = true;
      } else {
        const at = marker.getLatLng();
        if (at.lat !== point.lat || at.lng !== point.lon) {
          marker.setLatLng([point.lat, point.lon]);
          changed = true;
        }
        marker.setIcon(markerIcon(point));
      }
      marker.setZIndexOffset(point.state === "fault" ? 1000 : point.state === "playing" ? 500 : 0);
      marker.bindPopup(popupFor(point));
      tagMarker(marker, point);
    }
    if (changed && markers.size) {
      const bounds = L.latLngBounds([...markers.values()].map((m) => m.getLatLng()));
      map.fitBounds(bounds, { padding: [30, 30], maxZoom: 17 });
    }
    el.dataset.markers = String(markers.size);
  }

  sync();
  document.body.addEventListener("htmx:afterSwap", (event) => {
    if (event.target instanceof Element && event.target.id === "map-points") sync();
  });
  // The box's size follows the layout (a phone turned sideways): Leaflet must measure it again.
  window.addEventListener("resize", () => map.invalidateSize());
}

// ---- location pickers in forms -------------------------------------------------------------------------

function coordinate(input) {
  const value = Number(String(input.value).trim().replace(",", "."));
  return input.value.trim() === "" || !Number.isFinite(value) ? null : value;
}

function startPicker(el) {
  const latInput = document.getElementById(el.dataset.latInput);
  const lonInput = document.getElementById(el.dataset.lonInput);
  if (!(latInput instanceof HTMLInputElement) || !(lonInput instanceof HTMLInputElement)) return;
  const map = baseMap(el);
  let pin = null;

  function place(lat, lon, pan) {
    if (pin) pin.setLatLng([lat, lon]);
    else pin = L.marker([lat, lon], { icon: markerIcon({ kind: "pick", state: "pick" }) }).addTo(map);
    if (pan) map.setView([lat, lon], Math.max(map.getZoom(), 15));
  }

  function fromInputs() {
    const lat = coordinate(latInput);
    const lon = coordinate(lonInput);
    if (lat !== null && lon !== null && Math.abs(lat) <= 90 && Math.abs(lon) <= 180) place(lat, lon, true);
    else if (pin && latInput.value.trim() === "" && lonInput.value.trim() === "") {
      pin.remove();
      pin = null;
    }
  }

  map.on("click", (event) => {
    latInput.value = event.latlng.lat.toFixed(6);
    lonInput.value = L.Util.wrapNum(event.latlng.lng, [-180, 180], true).toFixed(6);
    place(Number(latInput.value), Number(lonInput.value), false);
  });
  latInput.addEventListener("change", fromInputs);
  lonInput.addEventListener("change", fromInputs);
  fromInputs();
}

// ---- start -------------------------------------------------------------------------------------------

function startMaps(root) {
  if (typeof L === "undefined") return;  // Leaflet missing (scripts/setup.sh not run): the lists still work
  const scope = root instanceof Element || root instanceof Document ? root : document;
  const found = [];
  if (scope instanceof Element && scope.matches(".map")) found.push(scope);
  found.push(...scope.querySelectorAll(".map"));
  for (const el of found) {
    if (!(el instanceof HTMLElement) || el.dataset.started) continue;
    el.dataset.started = "1";
    if (el.id === "map") startFleetMap(el);
    else if (el.classList.contains("map-pick")) startPicker(el);
  }
}

document.addEventListener("DOMContentLoaded", () => startMaps(document));
// A form swapped in by htmx (saved, or sent back with errors) brings a new picker.
document.addEventListener("htmx:load", (event) => startMaps(event.target));
