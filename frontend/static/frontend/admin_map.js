/* The admin's offline map widget (frontend/widgets.py): Django's MapWidget (gis/js/OLMapWidget.js)
   with our district boundaries as the base layer, built from the JSON options next to this
   script, so that the page needs no inline script (Content-Security-Policy, config/headers.py). */
(function () {
  'use strict';
  const script = document.currentScript;
  const options = JSON.parse(document.getElementById(script.dataset.options).textContent);
  options.base_layer = new ol.layer.Vector({
    source: new ol.source.Vector({url: options.districts_url, format: new ol.format.GeoJSON()}),
    style: function (feature) {
      return new ol.style.Style({
        fill: new ol.style.Fill({color: 'rgba(255, 255, 255, 0.7)'}),
        stroke: new ol.style.Stroke({color: '#5b7083', width: 1}),
        text: new ol.style.Text({
          text: feature.get('name') || '',
          font: "13px 'Noto Sans CJK SC', sans-serif",
          fill: new ol.style.Fill({color: '#23313f'}),
          stroke: new ol.style.Stroke({color: '#ffffff', width: 3})
        })
      });
    }
  });
  delete options.districts_url;
  window[options.module] = new MapWidget(options);
}());
