// ipywidgets' embed bundle typesets widget labels with the MathJax 2 call
// `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`; the book loads MathJax 3, which has
// no Hub, so every widget with a description threw a TypeError. This maps the call onto
// MathJax 3's typesetPromise (or skips it while MathJax is still starting: MathJax then
// typesets the whole page, widget labels included, when it is ready). Loaded before embed.js,
// whose renderer runs on the window's load event.
window.addEventListener("load", function () {
  if (window.MathJax === undefined || window.MathJax.Hub !== undefined) {
    return;
  }
  window.MathJax.Hub = {
    Queue: function (job) {
      var element = job && job[2];
      if (element && typeof window.MathJax.typesetPromise === "function") {
        window.MathJax.typesetPromise([element]).catch(function () {});
      }
    },
  };
});
