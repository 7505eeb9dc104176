// After htmx swaps the page in place (a case or shipment form submitted through hx-boost), move focus
// to the outcome message, so keyboard and screen-reader users hear what happened and keep their place.
document.addEventListener("htmx:afterSettle", function (event) {
  if (!event.detail || !event.detail.boosted) { return; }
  var main = document.getElementById("main");
  if (!main) { return; }
  var notice = main.querySelector("[data-notice]");
  (notice || main).focus();
});
