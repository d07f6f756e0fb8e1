<?php

namespace App\Http\Controllers;

class HomeController extends Controller
{
    public function __invoke()
    {
        return response()
            ->view('home', ['release' => release_name()])
            // Probes must see every switch, never a cached page.
            ->header('Cache-Control', 'no-store');
    }
}
