#@ File (label="Model file (empty = the configured model)", style="open", required=false, persist=false) model_file
// Plugins > ReSCU-Net > Model Info
//
// Shows in the Log what the service says about a model (architecture, window, training settings,
// best epoch) and where the service runs (version, device).
// Macro: run("Model Info", "model_file=/path/cells.rescunet");  (empty: the configured model)
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
    def client = R.fromPrefs()
    def f = client.modelFile(model_file != null && model_file.path ? model_file.path : null)
    def health = client.ensureService()
    String id = client.ensureModel(f)
    def m = client.getJson("/v1/models/" + id)
    IJ.log("ReSCU-Net model " + f.path)
    IJ.log("  id: " + id + (m.name ? ", name on the service: " + m.name : ""))
    def info = m.info ?: [:]
    info.each { k, v -> IJ.log("  " + k + ": " + (v instanceof Map || v instanceof List ? groovy.json.JsonOutput.toJson(v) : v)) }
    IJ.log("  service: " + client.url + ", rescunet-ij " + health.version + ", device " + health.device +
        (health.gpu ? " (" + (health.gpu instanceof Map ? (health.gpu.name ?: health.gpu) : health.gpu) + ")" : ""))
    result = groovy.json.JsonOutput.toJson([id: id, file: f.path, info: info])
    IJ.showStatus("ReSCU-Net: model " + id)
} catch (Throwable e) {
    R.fail(e)
    result = "error: " + R.messageOf(e)
}

// Fiji shows every non-null output of a script in a window: return none (the Log and the status bar say what happened).
return null
