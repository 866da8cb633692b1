// The server writes every moment in UTC; where the browser knows the reader's time zone, each
// is said again in that zone, the reader's own way (the UTC text stays as its title).
(function () {
  "use strict";
  var format;
  try {
    format = new Intl.DateTimeFormat(undefined, {
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
      timeZoneName: "short"
    });
  } catch (error) {
    return;
  }
  var moments = document.querySelectorAll("time.moment[datetime]");
  for (var i = 0; i < moments.length; i++) {
    var at = new Date(moments[i].getAttribute("datetime"));
    if (!isNaN(at.getTime())) {
      moments[i].title = moments[i].textContent;
      moments[i].textContent = format.format(at);
    }
  }
})();
