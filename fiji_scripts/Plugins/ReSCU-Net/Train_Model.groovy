#@ File (label="Training set (.zip)", style="open") training_set
#@ String (label="Model name (letters, digits, . _ -)", value="my-model") name
#@ Integer (label="Epochs", value=100, min=1) epochs
#@ Integer (label="Input size (pixels)", value=64, min=16) input_size
#@ Integer (label="Sub-image size (pixels, 0 = automatic)", value=0, min=0) subimage_size
#@ Double (label="Learning rate", value=0.001, min=0) learning_rate
#@ Integer (label="Batch size", value=32, min=1) batch_size
#@ Integer (label="Concatenation level", value=1, min=0) concatenation_level
#@ Integer (label="Base filters", value=64, min=1) base_filters
#@ Integer (label="Erosion width (pixels)", value=0, min=0) erosion_width
#@ Double (label="Validation fraction", value=0.1, min=0, max=0.9) validation_fraction
#@ Integer (label="Early stopping patience (epochs)", value=5, min=0) early_stopping_patience
#@ File (label="Save the trained model as (.rescunet)", style="save") model_out
#@ Boolean (label="Use it as the model from now on", value=true) use_model
#@ Boolean (label="Batch: on an error, log it and let the calling macro go on", value=false, persist=false) continue_on_error
// Plugins > ReSCU-Net > Train Model
//
// Trains a ReSCU-Net on the rescunet-ij service (its GPU when it has one) from a training-set zip
// (Export Training Set), shows the progress (status bar, progress bar; epochs and losses in the Log),
// then downloads the model to a local file and makes it the configured model.
// Press Esc to cancel: the service stops after its current batch and saves no model.
// Macro: run("Train Model", "training_set=/path/testtrain.zip name=cells epochs=100 ... model_out=/path/cells.rescunet use_model=true");
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
String jobId = null
def client = null
try {
    R.begin()
    if (training_set == null || !training_set.isFile()) throw R.problem("The training set " + training_set + " does not exist: make one with Export Training Set.")
    if (model_out == null || !model_out.path) throw R.problem("Choose where to save the trained model.")
    def out = model_out.name.toLowerCase().endsWith(".rescunet") ? model_out : new File(model_out.path + ".rescunet")
    if (out.exists()) throw R.problem("The file " + out + " exists already: choose another name.")
    client = R.fromPrefs()
    client.ensureService()
    def p = R.trainingParams([epochs: epochs, input_size: input_size, subimage_size: subimage_size,
        learning_rate: learning_rate, batch_size: batch_size, concatenation_level: concatenation_level,
        base_filters: base_filters, erosion_width: erosion_width, validation_fraction: validation_fraction,
        early_stopping_patience: early_stopping_patience])
    IJ.showStatus("ReSCU-Net: uploading the training set...")
    def a = client.postMultipart("/v1/jobs/train", [
        ["name", name],
        ["params", groovy.json.JsonOutput.toJson(p)],
        ["training_set", training_set.bytes, training_set.name, "application/zip"]])
    jobId = a.json().id
    IJ.log("ReSCU-Net: training job " + jobId + " started on the service (" + name + ", " + epochs + " epochs); press Esc to cancel")
    IJ.resetEscape()
    boolean cancelSent = false
    int loggedEpoch = 0
    def job
    while (true) {
        job = client.getJson("/v1/jobs/" + jobId)
        def pr = job.progress ?: [:]
        if (pr.epoch && pr.epochs) {
            double done = (pr.epoch - 1 + (pr.batches ? (pr.batch ?: 0) / pr.batches : 0)) / pr.epochs
            IJ.showProgress(Math.max(0.0, Math.min(done, 0.999)))
            String eta = pr.eta_s != null ? String.format(", %.0f s left", pr.eta_s as double) : ""
            IJ.showStatus("ReSCU-Net training: epoch " + pr.epoch + "/" + pr.epochs +
                (pr.batches ? ", batch " + pr.batch + "/" + pr.batches : "") + eta + " (Esc cancels)")
        }
        for (h in (job.history ?: [])) {
            if (h.epoch != null && h.epoch > loggedEpoch) {
                loggedEpoch = h.epoch
                def f = { v -> v == null ? "-" : String.format("%.4f", v as double) }
                IJ.log("  epoch " + h.epoch + "/" + epochs + ": train loss " + f(h.train_loss) +
                    ", val loss " + f(h.val_loss) + ", val IoU " + f(h.val_iou))
            }
        }
        if (job.status in ["succeeded", "failed", "cancelled"]) break
        if (!cancelSent && IJ.escapePressed()) {
            IJ.log("ReSCU-Net: cancelling the training (it stops after the current batch; no model is saved)...")
            client.request("POST", "/v1/jobs/" + jobId + "/cancel", new byte[0], "application/json")
            cancelSent = true
        }
        Thread.sleep(1000)
    }
    IJ.showProgress(1.0)
    if (job.status == "cancelled") {
        result = "cancelled"
        IJ.log("ReSCU-Net: training job " + jobId + " cancelled; no model saved.")
        IJ.showStatus("ReSCU-Net: training cancelled")
    } else if (job.status == "failed") {
        throw R.problem("The training failed: " + (job.error ?: "no reason given"))
    } else {
        String modelId = job.result.model_id
        IJ.showStatus("ReSCU-Net: downloading the model...")
        def m = client.request("GET", "/v1/models/" + modelId + "/file")
        out.absoluteFile.parentFile?.mkdirs()
        def tmp = new File(out.path + ".part")
        tmp.bytes = m.body
        if (!tmp.renameTo(out)) { tmp.delete(); throw R.problem("Could not write " + out) }
        if (use_model) R.saveSettings(null, null, null, out.path)
        result = out.path
        IJ.log("ReSCU-Net: training finished; model saved as " + out.path + (use_model ? " (now the configured model)" : ""))
        IJ.showStatus("ReSCU-Net: model saved")
    }
} catch (Throwable e) {
    R.fail(e, continue_on_error)
    result = "error: " + R.messageOf(e)
}

// Fiji shows every non-null output of a script in a window: return none (the Log and the status bar say what happened).
return null
