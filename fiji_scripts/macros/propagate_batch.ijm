// ReSCU-Net from an ImageJ macro: propagate outlines with the rescunet-ij command line (batch mode).
//
// The macro runs "rescunet-ij propagate" with exec() on a TIFF movie and a RoiSet.zip holding the
// seed outlines, then opens the movie and the propagated ROIs (roiManager("open", ...)).
// Arguments (key=value; put values containing spaces in [brackets]):
//   exe    the rescunet-ij executable, e.g. [/home/me/venv/bin/rescunet-ij] (default: rescunet-ij on PATH)
//   movie  the TIFF movie                       rois   RoiSet.zip with the seed outlines
//   model  the trained model (.rescunet)        out    RoiSet.zip to write (default: RoiSet_propagated.zip
//                                                      next to rois)
//   first  frame with the seeds (1-based; 0 = the first outlined frame)
//   last   last frame to predict (0 = the end of the movie)
// Examples:
//   runMacro("/path/propagate_batch.ijm", "exe=[/opt/venv/bin/rescunet-ij] movie=[/data/cells.tif] rois=[/data/RoiSet.zip] model=[/data/cells.rescunet]");
//   ImageJ -batch /path/propagate_batch.ijm "movie=/data/cells.tif rois=/data/RoiSet.zip model=/data/cells.rescunet"
// Returns "count=<ROIs in the ROI Manager> out=<file>". Without an open ROI Manager window a
// batch-mode macro gets a private ROI Manager: measure or save inside the macro that calls this.

args = getArgument();
exe = call("ij.Macro.getValue", args, "exe", "rescunet-ij");
movie = call("ij.Macro.getValue", args, "movie", "");
rois = call("ij.Macro.getValue", args, "rois", "");
model = call("ij.Macro.getValue", args, "model", "");
out = call("ij.Macro.getValue", args, "out", "");
first = parseInt(call("ij.Macro.getValue", args, "first", "0"));
last = parseInt(call("ij.Macro.getValue", args, "last", "0"));

if (movie == "" || rois == "" || model == "")
    exit("propagate_batch.ijm needs movie=, rois= and model= arguments (got: " + args + ")");
if (!File.exists(movie)) exit("movie not found: " + movie);
if (!File.exists(rois)) exit("ROI set not found: " + rois);
if (!File.exists(model)) exit("model file not found: " + model);
if (out == "") out = File.getDirectory(rois) + "RoiSet_propagated.zip";
if (isNaN(first) || isNaN(last) || first < 0 || last < 0)
    exit("first= and last= must be frame numbers (1-based) or 0");

setBatchMode(true);
if (File.exists(out)) {
    if (!File.delete(out)) exit("cannot replace " + out);
}
// Optional flags as single "--flag=value" arguments; an unused one repeats --overwrite (harmless).
firstArg = "--overwrite";
if (first > 0) firstArg = "--first-frame=" + first;
lastArg = "--overwrite";
if (last > 0) lastArg = "--last-frame=" + last;
// One exec() argument per command-line argument: paths with spaces stay intact.
output = exec(exe, "propagate", movie, rois, "--model", model, "--output", out, "--overwrite", firstArg, lastArg);
if (!File.exists(out)) {
    exit("rescunet-ij propagate wrote no ROI set (" + out + ").\n" + output +
         "\nRun it in a terminal to see why:\n" + exe + " propagate " + movie + " " + rois +
         " --model " + model + " --output " + out);
}
open(movie);
roiManager("open", out);
return "count=" + roiManager("count") + " out=" + out;
