#@ ImagePlus imp
#@ File (label="Save the training set as (.zip)", style="save") output
#@ Integer (label="Sub-image size in pixels (0 = automatic)", value=0, min=0) subimage_size
#@ Boolean (label="Batch: on an error, log it and let the calling macro go on", value=false, persist=false) continue_on_error
// Plugins > ReSCU-Net > Export Training Set
//
// Makes a training set from the outlined frames of the channel and slice on screen (the area ROIs of
// the ROI Manager, else of the Overlay; object identity from their group, object_id property or name)
// and saves it as a zip: what "Train Model", "rescunet-ij train" and the Colab notebook read.
// Macro: run("Export Training Set", "output=/path/testtrain.zip subimage_size=0");
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
    if (imp == null) throw R.problem("Open a time-lapse with outlined objects first.")
    if (output == null || !output.path) throw R.problem("Choose where to save the training set.")
    def out = output.name.toLowerCase().endsWith(".zip") ? output : new File(output.path + ".zip")
    def client = R.fromPrefs()
    def s = R.series(imp)
    client.ensureService()
    def source = R.roiSource(imp, null)
    def sent = source.entries.findAll { R.sendable(it[1], imp, s, 1, s.n) }
    if (sent.isEmpty()) throw R.problem("No outlines: outline the objects on a few frames (ROI Manager) first.")
    def params = [image: [channels: s.channels, slices: s.slices, frames: s.frames], channel: s.c,
                  z: s.axis == "t" ? s.z : 1, first_index: 1, motion: "auto"]
    if (subimage_size > 0) params.subimage_size = subimage_size
    if (s.axis == "z") { params.axis = "z"; params.t = s.t; params.remove("z") }
    IJ.showStatus("ReSCU-Net: making the training set...")
    def a = client.postMultipart("/v1/training-sets", [
        ["movie", R.tiff(imp, s, 1, s.n), "movie.tif", "image/tiff"],
        ["rois", R.zip(sent), "RoiSet.zip", "application/zip"],
        ["params", groovy.json.JsonOutput.toJson(params)]])
    out.absoluteFile.parentFile?.mkdirs()
    out.bytes = a.body
    result = out.path
    IJ.log("ReSCU-Net: training set from " + imp.title + " (" + sent.size() + " outlines) saved as " + out.path +
        " (" + String.format("%.1f", a.body.length / 1e6) + " MB)")
    IJ.showStatus("ReSCU-Net: training set saved")
} catch (Throwable e) {
    R.fail(e, continue_on_error)
    result = "error: " + R.messageOf(e)
}

// Fiji shows every non-null output of a script in a window: return none (the Log and the status bar say what happened).
return null
