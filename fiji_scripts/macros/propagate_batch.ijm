// ReSCU-Net from an ImageJ macro: propagate outlines with the rescunet-ij command line (batch mode).
// For plain ImageJ 1.x (no Fiji needed); in Fiji the Plugins > ReSCU-Net commands do more.
//
// The macro runs "rescunet-ij propagate" with exec() on a TIFF movie and a RoiSet.zip holding the
// seed outlines, then opens the movie and the propagated ROIs (roiManager("open", ...)).
// exec() returns only what a program prints on stdout, so the macro asks the command line for a
// status file (--status-file) and reads the outcome from it: the command line's error message when
// it fails, and its doubtful predictions (also printed to the Log window) when it succeeds.
// An existing output file is replaced only by a successful run (--overwrite; the command line
// writes atomically), so a failed run leaves it as it was.
//
// Arguments (key=value; put values containing spaces in [brackets]):
//   movie  the TIFF movie                       rois   RoiSet.zip with the seed outlines
//   model  the trained model (.rescunet)        out    RoiSet.zip to write (default: RoiSet_propagated.zip
//                                                      next to rois)
//   first  frame with the seeds (1-based; 0 = the first outlined frame)
//   last   last frame to predict (0 = the end of the movie)
//   exe    the rescunet-ij program. Default: the one of the Python environment in the ImageJ
//          preference rescunet.env (set by "rescunet-ij install-fiji"): <env>/bin/rescunet-ij, or
//          <env>\Scripts\rescunet-ij.exe on Windows; else rescunet-ij on the PATH (an ImageJ started
//          from the macOS Finder or the Windows Start menu usually has no PATH to it).
// Examples:
//   runMacro("ReSCU-Net/propagate_batch.ijm", "movie=[/data/cells.tif] rois=[/data/RoiSet.zip] model=[/data/cells.rescunet]");
//   ImageJ -batch /path/propagate_batch.ijm "movie=/data/cells.tif rois=/data/RoiSet.zip model=/data/cells.rescunet"
// Returns "count=<ROIs in the ROI Manager> doubtful=<predictions worth a look> out=<file>".
// A failure stops the macro with exit(<the reason>), also printed to the Log window.
// Without an open ROI Manager window a batch-mode macro gets a private ROI Manager: measure or save
// inside the macro that calls this.

args = getArgument();
exe = call("ij.Macro.getValue", args, "exe", "");
movie = call("ij.Macro.getValue", args, "movie", "");
rois = call("ij.Macro.getValue", args, "rois", "");
model = call("ij.Macro.getValue", args, "model", "");
out = call("ij.Macro.getValue", args, "out", "");
first = parseInt(call("ij.Macro.getValue", args, "first", "0"));
last = parseInt(call("ij.Macro.getValue", args, "last", "0"));

if (movie == "" || rois == "" || model == "")
    fail("propagate_batch.ijm needs movie=, rois= and model= arguments (got: " + args + ")");
if (!File.exists(movie)) fail("movie not found: " + movie);
if (!File.exists(rois)) fail("ROI set not found: " + rois);
if (!File.exists(model)) fail("model file not found: " + model);
if (out == "") out = File.getDirectory(rois) + "RoiSet_propagated.zip";
if (isNaN(first) || isNaN(last) || first < 0 || last < 0)
    fail("first= and last= must be frame numbers (1-based) or 0");
if (exe == "") exe = findRescunet();

setBatchMode(true);
status = getDirectory("temp") + "rescunet-ij-status-" + getTime() + "-" + round(random * 1e9) + ".txt";
// Optional flags as single "--flag=value" arguments; an unused one repeats --overwrite (harmless).
firstArg = "--overwrite";
if (first > 0) firstArg = "--first-frame=" + first;
lastArg = "--overwrite";
if (last > 0) lastArg = "--last-frame=" + last;
// One exec() argument per command-line argument: paths with spaces stay intact.
output = exec(exe, "propagate", movie, rois, "--model", model, "--output", out, "--overwrite",
              "--status-file", status, firstArg, lastArg);
if (!File.exists(status)) {
    fail("rescunet-ij propagate did not run (" + exe + "): " + String.trim(output) +
         "\nRun it in a terminal to see why:\n" + exe + " propagate \"" + movie + "\" \"" + rois +
         "\" --model \"" + model + "\" --output \"" + out + "\"");
}
text = File.openAsString(status);
deleted = File.delete(status);
lines = split(text, "\n\r");
ok = statusValue(lines, "ok");  // not in the if(): ImageJ 1.53t misreads that comparison
if (ok != "true") {
    error = statusValue(lines, "error");
    fail("rescunet-ij propagate failed: " + error);
}
doubtful = parseInt(statusValue(lines, "doubtful"));
if (isNaN(doubtful)) doubtful = 0;
if (doubtful > 0) {
    print("rescunet-ij propagate: " + doubtful + " prediction(s) worth a look:");
    for (i = 1; i <= doubtful; i++) {
        line = statusValue(lines, "doubtful." + i);  // (1.53t: call user functions on their own)
        print("  " + line);
    }
}
open(movie);
roiManager("open", out);
return "count=" + roiManager("count") + " doubtful=" + doubtful + " out=" + out;

// The rescunet-ij program: rescunet.env's, else the one on the PATH, else a message naming both.
function findRescunet() {
    env = call("ij.Prefs.get", "rescunet.env", "");
    if (env != "") {
        if (startsWith(getInfo("os.name"), "Windows"))
            path = env + "\\Scripts\\rescunet-ij.exe";
        else
            path = env + "/bin/rescunet-ij";
        if (File.exists(path)) return path;
        fail("the ImageJ preference rescunet.env names the Python environment " + env +
             ", but it has no " + path + ".\nRun \"rescunet-ij install-fiji\" again from the" +
             " environment where rescunet-ij is installed, or pass exe=[path of rescunet-ij].");
    }
    version = String.trim(exec("rescunet-ij", "version"));
    if (matches(version, "[0-9]+[.][0-9].*")) return "rescunet-ij";
    fail("rescunet-ij not found: the ImageJ preference rescunet.env is not set and rescunet-ij is" +
         " not on this ImageJ's PATH (" + version + ").\nFiji: run \"rescunet-ij install-fiji" +
         " <Fiji.app>\" from the Python environment where rescunet-ij is installed, then restart" +
         " Fiji. ImageJ: run call(\"ij.Prefs.set\", \"rescunet.env\", \"<that environment's" +
         " folder>\"); once. Or pass exe=[path of rescunet-ij].");
}

// The value of "key=value" in the status file's lines ("" when absent).
function statusValue(lines, key) {
    for (i = 0; i < lines.length; i++)
        if (startsWith(lines[i], key + "="))
            return substring(lines[i], lengthOf(key) + 1);
    return "";
}

// Stop with a message, in the Log window too (a batch run may show no dialog).
function fail(message) {
    print(message);
    exit(message);
}
