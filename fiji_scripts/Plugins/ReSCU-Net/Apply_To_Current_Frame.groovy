#@ ImagePlus imp
// Plugins > ReSCU-Net > Apply To Current Frame
//
// Predicts the frame on screen from the outlines of the frame before it (channel and slice on
// screen), with the configured model. No dialog: give it a keyboard shortcut (Plugins > Shortcuts >
// Add Shortcut...), step through the movie, correct an outline where needed and press it again.
// The ROIs of the two frames are replaced by the results; all other ROIs stay as they are.
// Macro: run("Apply To Current Frame");
import ij.IJ

// Load the shared library (Fiji.app/lib/rescunet-ij/RescunetClient.groovy; -Drescunet.lib=FILE overrides).
def libFile = new File(System.getProperty("rescunet.lib") ?: new File(System.getProperty("fiji.dir") ?:
    (IJ.getDirectory("imagej") ?: "."), "lib/rescunet-ij/RescunetClient.groovy").path)
if (!libFile.isFile()) {
    IJ.error("ReSCU-Net", "The ReSCU-Net library is missing:\n" + libFile +
        "\nInstall the Fiji commands again with: rescunet-ij install-fiji <path to Fiji.app>")
    return
}
// Compiled once per Fiji session (and again when the file changes): parsing it costs 0.15-0.4 s.
def libKey = libFile.canonicalPath + "@" + libFile.lastModified()
def libCache = System.getProperties().get("rescunet.lib.cache")
def R = (libCache instanceof Map && libCache.key == libKey) ? libCache.cls : null
if (R == null) {
    R = new GroovyClassLoader(getClass().getClassLoader()).parseClass(libFile)
    System.getProperties().put("rescunet.lib.cache", [key: libKey, cls: R])
}

result = ""
try {
    R.begin()
    if (imp == null) throw R.problem("Open a time-lapse first.")
    def client = R.fromPrefs()
    def s = R.series(imp)
    String unit = s.axis == "t" ? "frame" : "plane"
    int k = s.current
    if (k <= 1) throw R.problem("This is " + unit + " 1: go to the " + unit + " to predict; its outlines come from the " + unit + " before it.")
    def modelFile = client.modelFile()
    client.ensureService()
    String id = client.ensureModel(modelFile)
    def source = R.roiSource(imp, null)
    def answer
    if (s.axis == "t") {
        def params = [model: id, frame: k, reverse: false, seedFrame: k - 1]
        answer = client.runPropagation("/v1/apply", imp, s, k - 1, k, params, source, null)
    } else {
        def params = [model: id, first_frame: k - 1, last_frame: k, next_frame_only: true, reverse: false, seedFrame: k - 1]
        answer = client.runPropagation("/v1/propagate", imp, s, k - 1, k, params, source, null)
    }
    result = unit + " " + k + ": " + answer.outlines.size() + " outlines" +
        (answer.doubtful ? ", doubtful: " + answer.doubtful.collect { "object " + it.object_id }.join(", ") : "") +
        (answer.lost ? ", lost: " + answer.lost.keySet().join(", ") : "")
    IJ.showStatus("ReSCU-Net: " + result)
} catch (Throwable e) {
    R.fail(e)
    result = "error: " + R.messageOf(e)
}

// Fiji shows every non-null output of a script in a window: return none (the Log and the status bar say what happened).
return null
