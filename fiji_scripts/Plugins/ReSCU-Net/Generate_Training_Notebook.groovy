#@ File (label="Save the notebook as (.ipynb)", style="save") notebook
#@ String (label="Training-set zip (uploaded in Colab)", value="testtrain.zip") training_zip
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
// Plugins > ReSCU-Net > Generate Training Notebook
//
// Writes the Google Colab notebook that trains a ReSCU-Net with these settings on a free GPU from a
// training-set zip (Export Training Set). Open it in Colab, upload the zip, run all cells, and
// download the model.
// Macro: run("Generate Training Notebook", "notebook=/path/train.ipynb training_zip=testtrain.zip epochs=100 ...");
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
    if (notebook == null || !notebook.path) throw R.problem("Choose where to save the notebook.")
    def out = notebook.name.toLowerCase().endsWith(".ipynb") ? notebook : new File(notebook.path + ".ipynb")
    def client = R.fromPrefs()
    client.ensureService()
    def p = R.trainingParams([epochs: epochs, input_size: input_size, subimage_size: subimage_size,
        learning_rate: learning_rate, batch_size: batch_size, concatenation_level: concatenation_level,
        base_filters: base_filters, erosion_width: erosion_width, validation_fraction: validation_fraction,
        early_stopping_patience: early_stopping_patience])
    def nb = client.postJson("/v1/notebook", [params: p, training_zip: training_zip ?: "testtrain.zip"])
    out.absoluteFile.parentFile?.mkdirs()
    out.setText(groovy.json.JsonOutput.prettyPrint(groovy.json.JsonOutput.toJson(nb)), "UTF-8")
    result = out.path
    IJ.log("ReSCU-Net: training notebook saved as " + out.path + " (open it in Google Colab)")
    IJ.showStatus("ReSCU-Net: notebook saved")
} catch (Throwable e) {
    R.fail(e)
    result = "error: " + R.messageOf(e)
}

// Fiji shows every non-null output of a script in a window: return none (the Log and the status bar say what happened).
return null
