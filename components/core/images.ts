import * as fs from "fs";
import * as path from "path";

/**
 * The server images every target runs, one folder each under images/. images/catalogue.json is the one
 * place that says which Debian suite an image is built from, how it starts and which user it runs as; the
 * targets and scripts/prepare-machine.sh both read it.
 */
export type ImageName = "etcd" | "postgres" | "haproxy" | "mysql";
export type DebianSuite = "trixie" | "sid";

export interface ImageSpec {
    readonly description: string;
    /** Debian suite of the base image: MySQL 9.7 exists only in sid. */
    readonly suite: DebianSuite;
    /** The image's ENTRYPOINT and default arguments (CMD), as its Dockerfile declares them. */
    readonly entrypoint: readonly string[];
    readonly args: readonly string[];
    /** The uid and gid the server runs as; files a target places are owned by it. */
    readonly uid: number;
}

/**
 * The package's root: the folder holding package.json, images/ and schema.json. This module sits two levels
 * below it both as TypeScript source (components/core/images.ts) and compiled (dist/core/images.js), so the
 * same relative path works in a checkout and in an installed package.
 */
export const PACKAGE_ROOT = path.resolve(__dirname, "..", "..");

/** The folder holding one Dockerfile folder per image, inside the checkout or the installed package. */
export const IMAGES_DIR = path.join(PACKAGE_ROOT, "images");

function readCatalogue(): Readonly<Record<ImageName, ImageSpec>> {
    const file = path.join(IMAGES_DIR, "catalogue.json");
    // Read at run time rather than imported: an import would make tsc copy it into dist/ and nest the output.
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (err) {
        throw new Error(`hadb: the image catalogue ${file} is missing (${(err as Error).message}); the package is incomplete, reinstall it`);
    }
    return JSON.parse(text) as Record<ImageName, ImageSpec>;
}

export const IMAGES: Readonly<Record<ImageName, ImageSpec>> = readCatalogue();

export const IMAGE_NAMES = Object.keys(IMAGES) as ImageName[];
