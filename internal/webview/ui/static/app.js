// The pages work without this script. With it, lists refresh in place every two seconds
// and step logs stream live as server-sent events, which the browser resumes after a
// reconnect from the last line number it got.
(function () {
  function stream(pane) {
    var pre = pane.querySelector("pre");
    var fresh = true;
    var es = new EventSource(pane.dataset.log);
    function clear() { if (fresh) { pre.textContent = ""; fresh = false; } }
    es.addEventListener("source", clear);
    es.addEventListener("line", function (e) { clear(); pre.appendChild(document.createTextNode(e.data + "\n")); });
    es.addEventListener("end", function () { es.close(); });
  }
  function refresh(list) {
    setInterval(function () {
      fetch(list.dataset.refresh).then(function (r) { return r.ok ? r.text() : null; }).then(function (html) {
        if (html === null) return;
        var next = document.createElement(list.tagName);
        next.innerHTML = html;
        // A step's log pane that already streams is kept as it is; new ones start streaming.
        next.querySelectorAll("details.log[data-log]").forEach(function (pane) {
          var live = list.querySelector('details.log[data-log="' + pane.dataset.log + '"]');
          if (live) { pane.replaceWith(live); } else { stream(pane); }
        });
        list.replaceChildren.apply(list, Array.from(next.childNodes));
      }).catch(function () {});
    }, 2000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("details.log[data-log]").forEach(stream);
    document.querySelectorAll("[data-refresh]").forEach(refresh);
  });
})();
