// Sorts a table by the column whose heading is clicked: numbers by their exact data-value,
// text alphabetically; empty cells stay last. (No markup characters here: the page is XML too.)
(function () {
  function key(row, column) {
    var cell = row.children[column];
    var value = cell ? cell.getAttribute('data-value') : null;
    if (value === null) { return cell ? cell.textContent : ''; }
    return value === '' ? null : parseFloat(value);
  }
  document.querySelectorAll('table.sortable thead th').forEach(function (th) {
    th.addEventListener('click', function () {
      var table = th.closest('table');
      var body = table.tBodies[0];
      var column = Array.prototype.indexOf.call(th.parentNode.children, th);
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a, column), y = key(b, column);
        if (x === null) { return y === null ? 0 : 1; }
        if (y === null) { return -1; }
        var order = x > y ? 1 : (y > x ? -1 : 0);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
})();
