// "Check my work": a JupyterLab extension that needs no build step.
//
// JupyterLab loads a prebuilt extension as a webpack module-federation container: it runs
// this file, calls `_JUPYTERLAB[name].init(shareScope)` with the page's shared modules,
// then `get("./extension")`, which must resolve to a factory of a module whose default
// export is the plugin. This file is that container, written by hand: the plugin takes
// JupyterLab's own modules (apputils, notebook, services, lumino widgets) from the share
// scope instead of bundling them, so the source is what ships (no node, no webpack) and a
// browser test (tests/browser/test_check_my_work.py) proves JupyterLab loads it.
//
// Every text from the server reaches the page through textContent, never as HTML.
(function () {
  "use strict";

  var NAME = "autograder-check";
  var COMMAND = "autograder:check-my-work";
  var LABEL = "Check my work";
  var POLL_MS = 1000;
  var shared = null;

  function newer(a, b) {
    var x = a.split(/[.+-]/).map(Number);
    var y = b.split(/[.+-]/).map(Number);
    for (var i = 0; i < Math.max(x.length, y.length); i++) {
      if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) > (y[i] || 0);
    }
    return false;
  }

  // A module the page shares (the newest version offered), as webpack's share scope gives it.
  function use(pkg) {
    var versions = shared && shared[pkg];
    if (!versions) return Promise.reject(new Error(NAME + ": " + pkg + " is not shared by this JupyterLab"));
    var best = null;
    Object.keys(versions).forEach(function (v) {
      if (best === null || newer(v, best)) best = v;
    });
    return Promise.resolve(versions[best].get()).then(function (factory) {
      return factory();
    });
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function points(x) {
    return Number.isInteger(x) ? String(x) : x.toFixed(1);
  }

  var STYLE = [
    ".autograder-check-result { max-width: 60em; }",
    ".autograder-check-message { white-space: pre-wrap; word-break: break-word; max-height: 40vh; overflow: auto;",
    "  background: var(--jp-layout-color2); padding: 0.5em; }",
    ".autograder-check-status { font-weight: bold; padding: 0 0.4em; border-radius: 3px; color: white; }",
    ".is-passed .autograder-check-status { background: var(--jp-success-color1); }",
    ".is-failed .autograder-check-status { background: var(--jp-error-color1); }",
    ".autograder-check-total { font-size: var(--jp-content-font-size2); font-weight: bold; }",
  ].join("\n");

  function addStyle() {
    var style = element("style", null, STYLE);
    style.id = NAME + "-style";
    if (!document.getElementById(style.id)) document.head.appendChild(style);
  }

  function makePlugin(apputils, notebook, services, coreutils, widgets) {
    var settings = services.ServerConnection.makeSettings();
    var url = coreutils.URLExt.join(settings.baseUrl, "autograder", "check");
    var checking = {}; // path -> true while a check of that notebook runs
    var buttons = []; // {panel, node}

    function call(method, query, body) {
      var init = { method: method };
      if (body) init.body = JSON.stringify(body);
      return services.ServerConnection.makeRequest(url + query, init, settings).then(function (response) {
        return response.json().then(
          function (data) {
            if (!response.ok && !data.error) data.error = "The server answered " + response.status + ".";
            return data;
          },
          function () {
            return { ok: false, error: "The server answered " + response.status + " without a result." };
          }
        );
      });
    }

    function refreshButtons() {
      buttons = buttons.filter(function (b) {
        return !b.panel.isDisposed;
      });
      buttons.forEach(function (b) {
        var busy = !!checking[b.panel.context.path];
        b.node.disabled = busy;
        if (!busy) b.label.textContent = LABEL;
      });
    }

    function setLabel(path, text) {
      buttons.forEach(function (b) {
        if (!b.panel.isDisposed && b.panel.context.path === path) b.label.textContent = text;
      });
    }

    function resultBody(data) {
      var body = element("div", "autograder-check-result");
      if (!data.ok) {
        body.appendChild(element("p", "autograder-check-error", data.error));
        return body;
      }
      var report = data.report;
      body.appendChild(
        element(
          "p",
          "autograder-check-total",
          report.lesson + ": " + points(report.score) + " / " + points(report.max_score) + " points"
        )
      );
      body.appendChild(element("p", "autograder-check-verdict", report.verdict));
      report.exercises.forEach(function (ex) {
        var row = element("section", "autograder-check-exercise " + (ex.passed ? "is-passed" : "is-failed"));
        var head = element("h3", "autograder-check-exercise-title");
        head.appendChild(element("span", "autograder-check-status", ex.passed ? "PASSED" : "FAILED"));
        head.appendChild(element("span", null, " " + ex.title + " "));
        head.appendChild(
          element("span", "autograder-check-points", points(ex.points) + " / " + points(ex.max_points) + " points")
        );
        row.appendChild(head);
        if (ex.message) row.appendChild(element("pre", "autograder-check-message", ex.message));
        body.appendChild(row);
      });
      return body;
    }

    function show(data) {
      return apputils.showDialog({
        title: data.ok ? "Check my work: " + data.report.notebook : "Check my work: not checked",
        body: new widgets.Widget({ node: resultBody(data) }),
        buttons: [apputils.Dialog.okButton({ label: "OK" })],
      });
    }

    function check(panel) {
      if (!panel || panel.isDisposed) return Promise.resolve();
      var path = panel.context.path;
      if (checking[path]) {
        apputils.Notification.info("A check of this notebook is already running.", { autoClose: 3000 });
        return Promise.resolve();
      }
      checking[path] = true;
      refreshButtons();
      var started = Date.now();
      var progress = apputils.Notification.emit("Checking " + path + ": saving the notebook…", "in-progress", {
        autoClose: false,
      });
      var stage = "saving the notebook";
      var timer = setInterval(function () {
        var seconds = Math.round((Date.now() - started) / 1000);
        setLabel(path, "Checking… " + seconds + " s");
        apputils.Notification.update({ id: progress, message: "Checking " + path + ": " + stage + " (" + seconds + " s)" });
        call("GET", "?path=" + encodeURIComponent(path)).then(
          function (status) {
            if (status.state === "queued") stage = "waiting for another check to finish";
            else if (status.state === "running") stage = "running your notebook with the hidden checks";
          },
          function () {}
        );
      }, POLL_MS);
      return panel.context
        .save()
        .then(function () {
          stage = "running your notebook with the hidden checks";
          return call("POST", "", { path: path });
        })
        .catch(function (err) {
          return { ok: false, error: "The check could not run: " + (err && err.message ? err.message : err) };
        })
        .then(function (data) {
          clearInterval(timer);
          apputils.Notification.dismiss(progress);
          delete checking[path];
          refreshButtons();
          return show(data);
        });
    }

    return {
      id: NAME + ":plugin",
      description: "Check my work: grade the saved notebook with its lesson's hidden checks.",
      autoStart: true,
      requires: [notebook.INotebookTracker],
      optional: [apputils.ICommandPalette],
      activate: function (app, tracker, palette) {
        addStyle();
        app.commands.addCommand(COMMAND, {
          label: LABEL,
          caption: "Save this notebook and grade it with the lesson's hidden checks (points per exercise)",
          isEnabled: function () {
            return !!tracker.currentWidget;
          },
          execute: function () {
            return check(tracker.currentWidget);
          },
        });
        if (palette) palette.addItem({ command: COMMAND, category: "Course" });
        app.docRegistry.addWidgetExtension("Notebook", {
          createNew: function (panel) {
            var node = element("button", "jp-ToolbarButtonComponent jp-mod-minimal jp-Button autograder-check-button");
            node.type = "button";
            node.title = "Save, then grade this notebook with the lesson's hidden checks";
            var label = element("span", "jp-ToolbarButtonComponent-label", LABEL);
            node.appendChild(label);
            node.addEventListener("click", function () {
              check(panel);
            });
            var item = new widgets.Widget({ node: node });
            item.addClass("jp-ToolbarButton");
            var index = 0;
            var children = Array.from(panel.toolbar.children());
            while (index < children.length && !children[index].node.classList.contains("jp-Toolbar-spacer")) index++;
            panel.toolbar.insertItem(index, "autograderCheck", item);
            buttons.push({ panel: panel, node: node, label: label });
            return item;
          },
        });
      },
    };
  }

  var container = {
    init: function (scope) {
      shared = scope;
    },
    get: function (module) {
      if (module !== "./extension") {
        return Promise.reject(new Error(NAME + ': module "' + module + '" does not exist in container.'));
      }
      return Promise.all([
        use("@jupyterlab/apputils"),
        use("@jupyterlab/notebook"),
        use("@jupyterlab/services"),
        use("@jupyterlab/coreutils"),
        use("@lumino/widgets"),
      ]).then(function (m) {
        var plugin = makePlugin(m[0], m[1], m[2], m[3], m[4]);
        return function () {
          return { __esModule: true, default: plugin };
        };
      });
    },
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  window._JUPYTERLAB[NAME] = container;
})();
