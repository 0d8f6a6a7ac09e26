// Shows a range slider's value beside it as it moves.
(function () {
  "use strict";
  const slider = document.querySelector('input[type="range"][name="budget_seconds"]');
  const output = document.getElementById("budget-value");
  if (!slider || !output) return;
  const show = () => { output.textContent = slider.value; };
  slider.addEventListener("input", show);
  show();
})();
