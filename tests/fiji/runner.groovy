// Test runner for the ReSCU-Net Fiji commands, run in a real, separate JVM:
//     java -Djava.awt.headless=false -cp ij.jar:groovy-4.0.26.jar:groovy-json-4.0.26.jar \
//          groovy.ui.GroovyMain runner.groovy plan.json result.json
//
// The commands, ImageJ 1.x (ROI Manager, macro interpreter, image windows under Xvfb) and Groovy 4 are
// real. What is NOT real is the thin SciJava/imagej-legacy layer of Fiji, which this runner stands
// in for, and only for that:
//   * ParameterScriptProcessor: the "#@" lines are parsed (type, name, attributes) and blanked;
//   * the pre-processors: an ImagePlus input is the current image (ActiveImagePlusPreprocessor),
//     the others come from the macro options with Macro.getValue(options, name, null)
//     (imagej-legacy MacroPreprocessor), else from test-given values ("menu" steps stand in for the
//     dialog a person fills in), else from the "value" attribute. NB: real Fiji with a display
//     would show a dialog for inputs missing from the macro options; here they take their defaults.
//   * the menu: a command's label is its file name without extension, '_' -> ' ' (ScriptFinder),
//     and run("Label", "options") from a macro or IJ.run reaches it through an ij.CommandListener.
// Steps are listed in the plan (JSON); each step's outcome goes to the result file (JSON).

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import ij.CommandListener
import ij.Executer
import ij.IJ
import ij.ImagePlus
import ij.Macro
import ij.Prefs
import ij.WindowManager
import ij.gui.Overlay
import ij.io.RoiDecoder
import ij.macro.Interpreter
import ij.plugin.frame.RoiManager

import java.awt.Container
import java.awt.Dialog
import java.awt.Window
import java.util.zip.ZipFile

class Param {
    String name
    String type
    String io = "INPUT"
    Map attrs = [:]
}

class ScriptCommand {
    String label
    File file
    List<Param> params = []
    String processed

    static Object parseValue(String v) {
        v = v.trim()
        if (v.startsWith("{") && v.endsWith("}")) {
            return splitTop(v.substring(1, v.length() - 1)).collect { parseValue(it) }
        }
        if (v.length() >= 2 && (v[0] == '"' || v[0] == "'") && v[-1] == v[0]) return v.substring(1, v.length() - 1)
        return v
    }

    /** Split on commas outside quotes and braces. */
    static List<String> splitTop(String s) {
        def out = []
        def cur = new StringBuilder()
        int depth = 0
        Character quote = null
        for (ch in s.toCharArray()) {
            if (quote != null) {
                cur.append(ch)
                if (ch == quote) quote = null
            } else if (ch == '"' || ch == "'") {
                quote = ch; cur.append(ch)
            } else if (ch == '{') {
                depth++; cur.append(ch)
            } else if (ch == '}') {
                depth--; cur.append(ch)
            } else if (ch == ',' && depth == 0) {
                out << cur.toString(); cur = new StringBuilder()
            } else cur.append(ch)
        }
        if (cur.toString().trim()) out << cur.toString()
        return out
    }

    static ScriptCommand load(File f) {
        def c = new ScriptCommand(file: f)
        String base = f.name.substring(0, f.name.lastIndexOf('.'))
        c.label = base.replace('_', ' ')
        def lines = f.getText("UTF-8").split("\n", -1) as List
        def out = []
        for (line in lines) {
            if (line ==~ /^#@.*/) {
                String p = line.substring(line.indexOf('@') + 1)
                Map attrs = [:]
                int l = p.indexOf('('), r = p.lastIndexOf(')')
                if (l >= 0 && r > l) {
                    for (kv in splitTop(p.substring(l + 1, r))) {
                        int eq = kv.indexOf('=')
                        attrs[kv.substring(0, eq).trim()] = parseValue(kv.substring(eq + 1))
                    }
                    p = p.substring(0, l) + p.substring(r + 1)
                }
                def tokens = p.trim().split(/[ \t]+/) as List
                def prm = new Param(attrs: attrs)
                if (tokens[0].toUpperCase() in ["INPUT", "OUTPUT", "BOTH"]) {
                    prm.io = tokens[0].toUpperCase()
                    tokens = tokens.drop(1)
                }
                if (tokens[0].toLowerCase().startsWith("output")) { // "#@output String x"
                    prm.io = "OUTPUT"
                }
                prm.type = tokens[0].replaceFirst(/(?i)^output/, "")
                if (!prm.type) { prm.type = tokens[1]; tokens = tokens.drop(1) }
                prm.name = tokens[1]
                c.params << prm
                out << ""   // as ParameterScriptProcessor.process() returns "" for a parameter line
            } else out << line
        }
        c.processed = out.join("\n")
        return c
    }

    static Object convert(String type, String s) {
        switch (type) {
            case "String": return s
            case "File": return s ? new File(s) : null
            case ["Integer", "int", "Long", "long", "Short", "short"]: return s ? Integer.valueOf(s.trim()) : 0
            case ["Double", "double", "Float", "float"]: return s ? Double.valueOf(s.trim()) : 0.0d
            case ["Boolean", "boolean"]: return Boolean.valueOf(s.trim())
            default: throw new IllegalArgumentException("runner: unsupported parameter type " + type)
        }
    }

    Object defaultOf(Param p) {
        if (p.attrs.value != null) return convert(p.type, p.attrs.value.toString())
        if (p.attrs.choices) return p.attrs.choices[0]
        switch (p.type) {
            case ["Integer", "int"]: return 0
            case ["Double", "double"]: return 0.0d
            case ["Boolean", "boolean"]: return false
            case "String": return ""
            default: return null
        }
    }

    /** Run the script with inputs from the macro options (or given values, or defaults); returns the outputs. */
    Map run(String options, Map given) {
        def binding = new Binding()
        for (p in params) {
            if (p.io == "OUTPUT") continue
            Object v
            if (p.type == "ImagePlus") v = WindowManager.getCurrentImage()
            else if (given != null && given.containsKey(p.name)) {
                def g = given[p.name]
                v = g instanceof String ? convert(p.type, g) : g
            } else if (options != null && Macro.getValue(options, p.name, null) != null) {
                v = convert(p.type, Macro.getValue(options, p.name, null))
            } else v = defaultOf(p)
            if (p.attrs.choices && v != null && !(v in p.attrs.choices)) {
                throw new IllegalArgumentException("runner: " + p.name + "=" + v + " is not one of " + p.attrs.choices)
            }
            binding.setVariable(p.name, v)
        }
        def shell = new GroovyShell(ScriptCommand.class.classLoader, binding)
        shell.evaluate(processed, file.name.replaceAll(/[^A-Za-z0-9_]/, "_"))
        def outs = [:]
        for (p in params) if (p.io == "OUTPUT" && binding.hasVariable(p.name)) outs[p.name] = String.valueOf(binding.getVariable(p.name))
        // test introspection, not SciJava: the commands declare no outputs (Fiji would show each
        // in a window) but keep what they did in the script variable "result"
        if (binding.hasVariable("result")) outs.result = String.valueOf(binding.getVariable("result"))
        return outs
    }
}

// ------------------------------------------------------------------ the run

// An ImageJ instance (hidden main window), as in Fiji: IJ.log then goes to the Log window.
new ij.ImageJ(ij.ImageJ.NO_SHOW)
def plan = new JsonSlurper().parse(new File(args[0]))
def resultFile = new File(args[1])
def results = []
def dialogs = Collections.synchronizedList([])

def texts
texts = { Container c, List acc ->
    for (comp in c.components) {
        if (comp.getClass().name == "ij.gui.MultiLineLabel") {
            def f = comp.getClass().getDeclaredField("lines"); f.accessible = true
            acc.addAll(((String[]) f.get(comp)).findAll { it != null })
        } else if (comp instanceof java.awt.Label) acc << ((java.awt.Label) comp).text
        else if (comp instanceof java.awt.TextComponent) acc << ((java.awt.TextComponent) comp).text
        if (comp instanceof Container) texts(comp, acc)
    }
}
// Modal dialogs (IJ.error, ...) would block under Xvfb: record their text and close them.
def watchdog = new Thread({
    while (true) {
        for (w in Window.getWindows()) {
            if (w instanceof Dialog && w.isShowing()) {
                def acc = []
                texts(w, acc)
                dialogs << [title: w.title, text: acc.join("\n")]
                w.dispose()
            }
        }
        Thread.sleep(100)
    }
} as Runnable, "dialog watchdog")
watchdog.daemon = true
watchdog.start()

def commands = [:]
new File(plan.scripts_dir).eachFile { f ->
    if (f.name.endsWith(".groovy")) {
        def c = ScriptCommand.load(f)
        commands[c.label] = c
    }
}
def lastOutputs = [:]
def lastError = [null]
Executer.addCommandListener(new CommandListener() {
    String commandExecuting(String command) {
        def c = commands[command]
        if (c == null) return command
        try {
            lastOutputs.clear()
            lastOutputs.putAll(c.run(Macro.getOptions(), null))
        } catch (Throwable e) {
            lastError[0] = e
        }
        return null
    }
})

// What the image window shows (the ROI Manager's "Show All" outlines included): a screen capture
// of its canvas under Xvfb, plus the canvas magnification.
def captureAt = { ImagePlus imp, int c, int z, int t, String png ->
    imp.getWindow().toFront()
    imp.setPosition(c, z, t)
    imp.updateAndDraw()
    IJ.wait(600)
    def canvas = imp.getCanvas()
    def p = canvas.getLocationOnScreen()
    def shot = new java.awt.Robot().createScreenCapture(new java.awt.Rectangle((int) p.x, (int) p.y, (int) canvas.width, (int) canvas.height))
    javax.imageio.ImageIO.write(shot, "png", new File(png))
    return canvas.getMagnification()
}

for (step in plan.steps) {
    def res = [op: step.op, ok: true]
    int dialogsBefore = dialogs.size()
    IJ.log("\\Clear")
    long t0 = System.currentTimeMillis()
    try {
        switch (step.op) {
            case "open":
                def imp = IJ.openImage(step.path)
                if (imp == null) throw new IllegalStateException("cannot open " + step.path)
                if (step.show != false) { imp.show(); IJ.wait(200) } else WindowManager.setTempCurrentImage(imp)
                if (step.position) imp.setPosition(step.position[0], step.position[1], step.position[2])
                res.dims = imp.getDimensions() as List
                break
            case "position":
                WindowManager.getCurrentImage().setPosition(step.c, step.z, step.t)
                break
            case "rm_open":
                def rm = RoiManager.getRoiManager()
                rm.reset()
                rm.runCommand("Open", step.path)
                res.count = rm.getCount()
                break
            case "overlay_open":
                def ov = new Overlay()
                new ZipFile(step.path).withCloseable { z ->
                    for (e in z.entries()) ov.add(new RoiDecoder(z.getInputStream(e).bytes, e.name).getRoi())
                }
                WindowManager.getCurrentImage().setOverlay(ov)
                break
            case "rm_close":
                def rm = RoiManager.getInstance()
                if (rm != null) { rm.reset(); rm.close() }
                break
            case "overlay_save":
                def ov = WindowManager.getCurrentImage().getOverlay()
                res.count = ov == null ? 0 : ov.size()
                new java.util.zip.ZipOutputStream(new FileOutputStream(step.path)).withCloseable { zos ->
                    def out = new DataOutputStream(zos)
                    for (int i = 0; i < res.count; i++) {
                        zos.putNextEntry(new java.util.zip.ZipEntry(String.format("%04d.roi", i + 1)))
                        new ij.io.RoiEncoder(out).write(ov.get(i))
                        out.flush()
                    }
                }
                break
            case "overlay_count":
                res.count = WindowManager.getCurrentImage().getOverlay()?.size() ?: 0
                break
            case "rm_save":
                def rm = RoiManager.getInstance()
                res.count = rm == null ? 0 : rm.getCount()
                if (rm != null) { rm.deselect(); rm.runCommand("Save", step.path) }
                break
            case "run":   // what a macro's run("Label", "options") does
                lastError[0] = null
                lastOutputs.clear()
                IJ.run(step.label, step.options ?: "")
                if (lastError[0] != null) throw lastError[0]
                res.outputs = new LinkedHashMap(lastOutputs)
                break
            case "menu":  // what a person choosing the command in the menu and filling its dialog does
                def c = commands[step.label]
                if (c == null) throw new IllegalArgumentException("no command " + step.label)
                // on a thread of its own, as Fiji runs a module (not the runner's "Run$_" thread)
                def box = [null, null]
                def th = new Thread({
                    try { box[0] = c.run(null, step.values ?: [:]) } catch (Throwable e) { box[1] = e }
                } as Runnable, "module runner")
                th.start()
                th.join()
                if (box[1] != null) throw box[1]
                res.outputs = box[0]
                break
            case "macro": // a macro file in batch mode, as "ImageJ -batch FILE ARG" runs it
                def interp = new Interpreter()
                interp.setIgnoreErrors(true)
                Interpreter.batchMode = step.batch != false
                res.returned = interp.run(new File(step.path).getText("UTF-8"), step.arg ?: "")
                res.macro_error = interp.getErrorMessage()
                Interpreter.batchMode = false
                break
            case "macro_code":
                def interp = new Interpreter()
                interp.setIgnoreErrors(true)
                res.returned = interp.run(step.code, step.arg ?: "")
                res.macro_error = interp.getErrorMessage()
                break
            case "flatten":
                res.magnification = captureAt(WindowManager.getCurrentImage(), step.c, step.z, step.t, step.path)
                break
            case "prefs":
                res.values = step.keys.collectEntries { [it, Prefs.get(it, null)] }
                break
            default:
                throw new IllegalArgumentException("unknown op " + step.op)
        }
    } catch (Throwable e) {
        res.ok = false
        res.error = e.toString()
        def sw = new StringWriter(); e.printStackTrace(new PrintWriter(sw)); res.trace = sw.toString()
    }
    res.seconds = (System.currentTimeMillis() - t0) / 1000.0  // the step itself (benchmarks)
    if (step.wait != false) IJ.wait(150)  // let the watchdog see a dialog shown at the end
    res.log = IJ.getLog() ?: ""
    res.dialogs = new ArrayList(dialogs.subList(dialogsBefore, dialogs.size()))
    res.last_error = System.getProperty("rescunet.last_error")
    results << res
    resultFile.setText(JsonOutput.toJson([steps: results]), "UTF-8")
}
resultFile.setText(JsonOutput.toJson([steps: results]), "UTF-8")
System.exit(0)
