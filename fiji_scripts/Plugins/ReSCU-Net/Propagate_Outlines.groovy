#@ ImagePlus imp
#@ Integer (label="First frame (0 = the frame on screen)", value=0, min=0) first_frame
#@ Integer (label="Last frame (0 = to the end)", value=0, min=0) last_frame
#@ String (label="Direction", choices={"forward", "backward"}, value="forward") direction
#@ Boolean (label="Only the next frame", value=false) next_frame_only
#@ File (label="Batch: seeds from a RoiSet.zip (empty = ROI Manager / Overlay)", style="open", required=false, persist=false) rois_in
#@ File (label="Batch: save the ROIs to (empty = ROI Manager / Overlay)", style="save", required=false, persist=false) rois_out
#@ File (label="Batch: save a 16-bit label movie to", style="save", required=false, persist=false) labels_out
#@ File (label="Batch: save a report (CSV) to", style="save", required=false, persist=false) report_out
#@ Boolean (label="Batch: on an error, log it and let the calling macro go on", value=false, persist=false) continue_on_error
// Plugins > ReSCU-Net > Propagate Outlines
//
// Propagates the outlines of the first frame (ROI Manager, else the image's Overlay, or a RoiSet.zip
// given as rois_in) through the following frames (or the preceding ones, backward) of the channel and
// slice on screen, with the configured model, on the rescunet-ij service. The ROIs of that plane
// series in the frames recomputed are replaced by the results; all other ROIs stay as they are.
// Correct a frame and run again from it to redo only what follows.
// Macro: run("Propagate Outlines", "first_frame=1 last_frame=0 direction=forward next_frame_only=false");
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
    boolean reverse = direction == "backward"
    int seed = first_frame > 0 ? first_frame : s.current
    if (seed > s.n) throw R.problem("The first " + unit + " (" + seed + ") is after the last one of the image (" + s.n + ").")
    int last
    if (next_frame_only) last = reverse ? seed - 1 : seed + 1
    else last = last_frame > 0 ? Math.min(last_frame, s.n) : (reverse ? 1 : s.n)
    if (reverse ? last >= seed : last <= seed) {
        throw R.problem("Nothing to predict: " + unit + " " + seed + " is the " + (reverse ? "first" : "last") +
            " " + unit + " to go " + (reverse ? "backward" : "forward") + " from (last " + unit + ": " + last + ").")
    }
    int lo = Math.min(seed, last)
    int hi = Math.max(seed, last)
    def modelFile = client.modelFile()
    client.ensureService()
    String id = client.ensureModel(modelFile)
    def source = R.roiSource(imp, rois_in)
    def params = [model: id, first_frame: seed, last_frame: last, next_frame_only: next_frame_only,
                  reverse: reverse, seedFrame: seed]
    long t0 = System.currentTimeMillis()
    def answer = client.runPropagation("/v1/propagate", imp, s, lo, hi, params, source, rois_out)
    if (labels_out != null && labels_out.path) IJ.saveAsTiff(R.labels(imp, s, answer.all), labels_out.path)
    if (report_out != null && report_out.path) report_out.setText(R.report(answer), "UTF-8")
    int objects = answer.frames ? answer.frames[0].objects.size() : 0
    result = String.format("%ss %d-%d: %d outlines predicted (%d objects), %d doubtful, %d lost, in %.1f s",
        unit, answer.start_frame, answer.end_frame, answer.outlines.size(), objects,
        answer.doubtful.size(), answer.lost.size(), (System.currentTimeMillis() - t0) / 1000.0)
    IJ.log("ReSCU-Net: " + imp.title + ": " + result)
    for (d in answer.doubtful) IJ.log("  doubtful: " + unit + " " + d.frame + ", object " + d.object_id + ": " + d.why)
    IJ.showStatus("ReSCU-Net: " + result)
} catch (Throwable e) {
    R.fail(e, continue_on_error)
    result = "error: " + R.messageOf(e)
}

// Fiji shows every non-null output of a script in a window: return none (the Log and the status bar say what happened).
return null
