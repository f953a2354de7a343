// The filters: by status and by tag, kept in the address's #fragment
// (`#status=stale&tag=night`) so a filtered view can be bookmarked or sent.
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var status = document.getElementById("f-status");
  var tag = document.getElementById("f-tag");
  var count = document.getElementById("count");
  var shots = Array.prototype.slice.call(document.querySelectorAll("section.shot"));
  function has(select, value) {
    return Array.prototype.some.call(select.options, function (o) { return o.value === value; });
  }
  function fromFragment() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    var s = params.get("status") || "", t = params.get("tag") || "";
    status.value = has(status, s) ? s : "";
    tag.value = has(tag, t) ? t : "";
  }
  function apply(keep) {
    var shown = 0;
    shots.forEach(function (shot) {
      var tags = shot.dataset.tags ? shot.dataset.tags.split(" ") : [];
      var ok = (!status.value || shot.dataset.status === status.value) &&
        (!tag.value || tags.indexOf(tag.value) >= 0);
      shot.hidden = !ok;
      if (ok) shown += 1;
    });
    count.textContent = shown + " of " + shots.length + " shots shown";
    document.body.dataset.shown = String(shown);
    if (keep) return;
    var params = new URLSearchParams();
    if (status.value) params.set("status", status.value);
    if (tag.value) params.set("tag", tag.value);
    var fragment = params.toString();
    try {
      history.replaceState(null, "", fragment ? "#" + fragment : location.pathname + location.search);
    } catch (e) { /* some browsers refuse this on file: pages; the filter still works */ }
  }
  form.hidden = false;
  fromFragment();
  apply(true);
  status.addEventListener("change", function () { apply(false); });
  tag.addEventListener("change", function () { apply(false); });
  window.addEventListener("hashchange", function () { fromFragment(); apply(true); });
})();
