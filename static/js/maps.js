/* Registry maps on Leaflet (vendored). No CDN, no tiles unless a tile URL is set:
   without tiles the maps draw Bijie's county outlines on a plain background. */
(function () {
  "use strict";

  var STYLES = {
    county: { color: "#5b6660", weight: 1, fill: false, dashArray: "4 3" },
    project: { color: "#1f5e3f", weight: 2, fillColor: "#2f8f5b", fillOpacity: 0.35 },
    boundary: { color: "#12372a", weight: 3, fillColor: "#2f8f5b", fillOpacity: 0.3 },
    overlap: { color: "#a4262c", weight: 2, fillColor: "#a4262c", fillOpacity: 0.55 },
    drawn: { color: "#b35900", weight: 3, fillColor: "#f0b429", fillOpacity: 0.3 },
  };
  var BIJIE = [[26.36, 103.6], [27.78, 106.72]];

  function readJson(id) {
    var node = id && document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }

  function baseMap(element, settings) {
    var map = L.map(element, { scrollWheelZoom: false });
    map.fitBounds(BIJIE);
    if (settings && settings.tileUrl) {
      L.tileLayer(settings.tileUrl, { attribution: settings.tileAttribution || "" }).addTo(map);
    } else {
      element.classList.add("map-no-tiles");
    }
    fetch(element.dataset.countiesUrl || "/projects/counties.geojson")
      .then(function (response) { return response.json(); })
      .then(function (data) {
        L.geoJSON(data, {
          style: STYLES.county,
          onEachFeature: function (feature, layer) {
            layer.bindTooltip(escapeHtml(feature.properties.name), { sticky: true });
          },
        }).addTo(map).bringToBack();
      });
    return map;
  }

  function fit(map, layer) {
    var bounds = layer.getBounds();
    if (bounds.isValid()) { map.fitBounds(bounds, { padding: [20, 20], maxZoom: 15 }); }
  }

  // The project list: every filtered project, linked to its page.
  function projectsMap(element) {
    var map = baseMap(element, readJson(element.dataset.settings));
    fetch(element.dataset.projectsUrl)
      .then(function (response) { return response.json(); })
      .then(function (data) {
        var layer = L.geoJSON(data, {
          style: STYLES.project,
          onEachFeature: function (feature, layer) {
            var p = feature.properties;
            layer.bindPopup(
              '<a href="' + escapeHtml(p.url) + '"><strong>' + escapeHtml(p.code) +
              "</strong> " + escapeHtml(p.name) + "</a><br>" + escapeHtml(p.status) +
              " · " + escapeHtml(p.area_ha) + " ha"
            );
          },
        }).addTo(map);
        if (data.features.length) { fit(map, layer); }
        element.dataset.loaded = String(data.features.length);
      });
  }

  // The market: one circle per project with listings (its area grows with the
  // tonnes offered), linked to the project and to its listings.
  function marketMap(element) {
    var map = baseMap(element, readJson(element.dataset.settings));
    fetch(element.dataset.pointsUrl)
      .then(function (response) { return response.json(); })
      .then(function (data) {
        if (!data.features) { return; }
        var text = data.text;
        var most = data.features.reduce(function (max, feature) {
          return Math.max(max, feature.properties.tonnes);
        }, 1);
        var layer = L.geoJSON(data, {
          pointToLayer: function (feature, latlng) {
            var radius = 5 + 15 * Math.sqrt(feature.properties.tonnes / most);
            return L.circleMarker(latlng, Object.assign({ radius: radius }, STYLES.project));
          },
          onEachFeature: function (feature, layer) {
            var p = feature.properties;
            layer.bindPopup(
              '<a href="' + escapeHtml(p.url) + '"><strong>' + escapeHtml(p.code) +
              "</strong> " + escapeHtml(p.name) + "</a><br>" +
              escapeHtml(text.listings) + ": " + escapeHtml(p.listings) + "<br>" +
              escapeHtml(text.tonnes) + ": " + escapeHtml(p.tonnes) + " t CO2e<br>" +
              escapeHtml(text.lowest) + ": " + escapeHtml(p.lowest_price) + "<br>" +
              '<a href="' + escapeHtml(p.market_url) + '">' + escapeHtml(text.show) + "</a>"
            );
          },
        }).addTo(map);
        if (data.features.length > 1) {
          fit(map, layer);
        } else if (data.features.length === 1) {
          var point = data.features[0].geometry.coordinates;
          map.setView([point[1], point[0]], 11);
        }
        element.dataset.loaded = String(data.features.length);
      });
  }

  // A project page: its boundary, and any overlap that blocked a submission.
  function projectMap(element) {
    var map = baseMap(element, readJson(element.dataset.settings));
    var layers = readJson(element.dataset.layers);
    if (layers.landcover) {
      L.imageOverlay(layers.landcover.url, layers.landcover.bounds, { opacity: 0.9 }).addTo(map);
    }
    var style = layers.landcover ? { color: "#12372a", weight: 2, fill: false } : STYLES.boundary;
    var boundary = L.geoJSON(layers.boundary, { style: style }).addTo(map);
    fit(map, boundary);
    if (layers.overlaps && layers.overlaps.length) {
      var overlaps = L.geoJSON(layers.overlaps, {
        style: STYLES.overlap,
        onEachFeature: function (feature, layer) {
          var p = feature.properties;
          layer.bindTooltip(escapeHtml(p.code + " " + p.name + ": " + p.area_ha + " ha"), { permanent: false });
        },
      }).addTo(map);
      fit(map, L.featureGroup([boundary, overlaps]));
    }
    element.dataset.loaded = "1";
  }

  // The boundary field: draw a polygon, or see the uploaded one.
  function boundaryWidget(container) {
    var textarea = document.getElementById(container.dataset.target);
    var element = container.querySelector("[data-map-canvas]");
    var map = baseMap(element, readJson("map-settings"));
    var drawn = new L.FeatureGroup().addTo(map);

    function load(text) {
      drawn.clearLayers();
      if (!text || !text.trim()) { return; }
      try {
        L.geoJSON(JSON.parse(text), { style: STYLES.drawn }).eachLayer(function (layer) {
          drawn.addLayer(layer);
        });
        fit(map, drawn);
      } catch (error) { /* the server reports malformed GeoJSON */ }
    }

    function save() {
      var polygons = [];
      drawn.eachLayer(function (layer) {
        var geometry = layer.toGeoJSON().geometry;
        if (geometry.type === "Polygon") { polygons.push(geometry.coordinates); }
        if (geometry.type === "MultiPolygon") { polygons = polygons.concat(geometry.coordinates); }
      });
      textarea.value = polygons.length
        ? JSON.stringify({ type: "MultiPolygon", coordinates: polygons })
        : "";
    }

    load(textarea.value);
    if (textarea.disabled || textarea.readOnly) { return; }
    map.addControl(new L.Control.Draw({
      draw: {
        polygon: { allowIntersection: false, showArea: true, shapeOptions: STYLES.drawn },
        rectangle: { shapeOptions: STYLES.drawn },
        polyline: false, circle: false, marker: false, circlemarker: false,
      },
      edit: { featureGroup: drawn },
    }));
    map.on(L.Draw.Event.CREATED, function (event) { drawn.addLayer(event.layer); save(); });
    map.on(L.Draw.Event.EDITED, save);
    map.on(L.Draw.Event.DELETED, save);
    textarea.addEventListener("change", function () { load(textarea.value); });
    element.dataset.loaded = "1";
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof L === "undefined") { return; }
    document.querySelectorAll("[data-projects-map]").forEach(projectsMap);
    document.querySelectorAll("[data-market-map]").forEach(marketMap);
    document.querySelectorAll("[data-project-map]").forEach(projectMap);
    document.querySelectorAll("[data-boundary-widget]").forEach(boundaryWidget);
  });
})();
